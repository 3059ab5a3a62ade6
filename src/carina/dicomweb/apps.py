from django.apps import AppConfig


class DicomwebConfig(AppConfig):
    name = "carina.dicomweb"
    label = "dicomweb"
    verbose_name = "DICOMweb"
