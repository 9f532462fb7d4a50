import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from gos_web_socket.app.exceptions import RoutingError
from notes.models import Note
from notes.realtime import pusher

EXPECTED = 'expected a JSON body {"text": "..."}'


def read_text(request: HttpRequest, room: str) -> str:
    """The body's text, once the room is known to make a channel; ValueError says why not."""
    try:
        body: Any = json.loads(request.body)
    except ValueError:
        raise ValueError(EXPECTED) from None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise ValueError(EXPECTED)
    try:
        pusher.router.generate("acme_topic", {"room": room})  # refuse it before saving
    except RoutingError as exc:
        raise ValueError(str(exc)) from None
    return body["text"]


@csrf_exempt  # an API called by scripts in this example; keep CSRF for browser forms
@require_POST
def create_note(request: HttpRequest, room: str) -> JsonResponse:
    """Save a note; the post_save receiver pushes it (notes/signals.py)."""
    try:
        text = read_text(request, room)
    except ValueError as exc:  # bad input is the client's error (400), not a 500
        return JsonResponse({"error": str(exc)}, status=400)
    note = Note.objects.create(room=room, text=text)
    return JsonResponse({"id": note.pk}, status=201)


@csrf_exempt
@require_POST
def announce(request: HttpRequest, room: str) -> JsonResponse:
    """Push straight from the view, nothing saved."""
    try:
        text = read_text(request, room)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    pusher.push_sync({"announce": text}, "acme_topic", {"room": room})
    return JsonResponse({"pushed": True})
