import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notes.models import Note
from notes.realtime import pusher


@csrf_exempt  # an API called by scripts in this example; keep CSRF for browser forms
@require_POST
def create_note(request: HttpRequest, room: str) -> JsonResponse:
    """Save a note; the post_save receiver pushes it (notes/signals.py)."""
    note = Note.objects.create(room=room, text=json.loads(request.body)["text"])
    return JsonResponse({"id": note.pk}, status=201)


@csrf_exempt
@require_POST
def announce(request: HttpRequest, room: str) -> JsonResponse:
    """Push straight from the view, nothing saved."""
    pusher.push_sync({"announce": json.loads(request.body)["text"]}, "acme_topic", {"room": room})
    return JsonResponse({"pushed": True})
