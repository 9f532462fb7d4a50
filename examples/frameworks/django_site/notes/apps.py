from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "notes"

    def ready(self) -> None:
        from notes import signals  # noqa: F401 - connects the post_save receiver
