"""User-facing errors: each carries a message a user can act on, shown without a traceback."""


class NseError(Exception):
    """Base of every error caused by user input or the user's environment."""


class ModelLoadError(NseError):
    """The model path, its files, or its tokenizer cannot be used."""


class UnsupportedArchitectureError(NseError):
    """The model loaded, but NSE cannot find the modules it edits."""


class InsufficientMemoryError(NseError):
    """Loading or running would need more memory than the device has free."""


class ProjectError(NseError):
    """A project folder or its state does not match what is asked of it."""


class ProjectLockedError(ProjectError):
    """Another window or process has the project open for writing."""


class StorageError(ProjectError):
    """The disk under a project is full, read-only or damaged; the project is as it was before."""


class DamagedStateError(ProjectError):
    """The current editing-state file is missing or differs from its recorded checksum."""


class SettingsError(NseError):
    """An editing setting has the wrong type, or a value outside what it allows."""


class OutputFileError(NseError):
    """A file the user asked for (an export, an errors file) cannot be written where asked."""


class ImportFormatError(NseError):
    """A fact file cannot be read as any supported format."""


class EditError(NseError):
    """An edit batch could not be applied; the model and state are unchanged."""


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it; the job leaves no trace."""
