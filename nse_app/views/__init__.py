"""The screens of the main window; each takes the Session it shows and refreshes itself."""
