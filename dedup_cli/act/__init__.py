"""The only code that changes files in an images folder: actions, journal, apply, undo, locks."""
