"""Other formats and libraries: Dynamics 365 import, a transitions adapter."""
