"""Fixes for bugs of the pinned toolkits that the project's configs run into. Each
module imports its toolkit, so it is imported only by the configs that need it
(``custom_imports``), never by ``import ghostnetv2_mm``."""
