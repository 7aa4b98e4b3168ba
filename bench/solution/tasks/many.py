"""A thousand generated tasks, for the page benchmark."""

from lime_task import task

COUNT = 1000
NAMES = []

for number in range(COUNT):

    def _generated(app, value: int = number, label: str = "x"):
        """A generated task for the page benchmark."""
        return value

    _generated.__name__ = _generated.__qualname__ = f"generated_{number:04d}"
    globals()[_generated.__name__] = task(_generated)
    NAMES.append(f"{__name__}.{_generated.__name__}")
