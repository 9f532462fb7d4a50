"""A saved note is pushed to its room, once the transaction that saved it has committed."""

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from notes.models import Note
from notes.realtime import pusher


@receiver(post_save, sender=Note)
def push_note(sender: type[Note], instance: Note, created: bool, **kwargs: Any) -> None:
    if created:
        data = {"note": {"id": instance.pk, "text": instance.text}}
        transaction.on_commit(lambda: pusher.push_sync(data, "acme_topic", {"room": instance.room}))
