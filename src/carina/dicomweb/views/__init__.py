"""DICOMweb views, one module per service (the routes are in ``carina.dicomweb.urls``)."""
