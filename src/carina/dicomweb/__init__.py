"""DICOMweb adapter (PS3.18): QIDO-RS, WADO-RS and STOW-RS over the archive core."""
