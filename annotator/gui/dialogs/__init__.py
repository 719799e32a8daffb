"""Dialogs of the reviewer: reviewer name, move-to-identity, duplicate group, shortcuts, import."""
