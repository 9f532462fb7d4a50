"""A channel's ``Topic`` as one hook call sees it: bound to the push ``on_push`` handles
(``BoundTopic``), or to the PUBLISH ``on_publish`` handles (``PublishedTopic``).

Each view reads and writes the channel topic itself (topic.py); only its ``broadcast`` adds
what the hook's call carries, until the hook returned. dispatch.py makes them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from gos_web_socket.app.push import Push
from gos_web_socket.app.server.topic import Topic

Narrow = Callable[[Collection[str], Collection[str]], tuple[Collection[str], Collection[str]]]
"""(exclude, eligible) of a broadcast → the (exclude, eligible) to send it with."""


class TopicView(Topic):
    """A channel's ``Topic`` seen by one hook call: everything reads and writes the channel
    topic itself, so user code written against ``Topic`` keeps working; only ``broadcast``
    differs (subclasses), and only until the hook returned (``end``)."""

    __slots__ = ("unbound", "_ended")

    unbound: Topic
    _ended: bool

    def __init__(self, topic: Topic) -> None:
        object.__setattr__(self, "unbound", topic)
        object.__setattr__(self, "_ended", False)

    def end(self) -> None:
        """The hook returned: later broadcasts through this view are plain live ones."""
        object.__setattr__(self, "_ended", True)

    def __getattr__(self, name: str) -> Any:
        """The channel topic's state (this view's own slots of ``Topic`` stay empty)."""
        if name == "unbound":  # not set yet (a copy): no endless lookup
            raise AttributeError(name)
        return getattr(self.unbound, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.unbound, name, value)


class BoundTopic(TopicView):
    """A channel's ``Topic`` bound to one push: what ``PushableTopic.on_push`` receives.

    ``broadcast`` is the channel topic's, made part of ``push`` (recorded at its position, a
    refill, a capture: app/push.py) until the push is handled (``end``). A broadcast through
    this view after ``on_push`` returned (a task, a timer that kept it) is a live one of its
    own, as one on ``unbound`` (the channel topic) is.
    """

    __slots__ = ("_push",)

    _push: Push

    def __init__(self, topic: Topic, push: Push) -> None:
        super().__init__(topic)
        object.__setattr__(self, "_push", push)

    @property
    def push(self) -> Push:
        """The push this view belongs to."""
        return self._push

    def broadcast(
        self,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        push: Push | None = None,
        *,
        disclosed: Mapping[str, Any] | None = None,
    ) -> int:
        """``Topic.broadcast`` on the channel topic, as part of this view's push (until
        ``end``) or of ``push`` when given."""
        if push is None and not self._ended:
            push = self._push
        return self.unbound.broadcast(payload, exclude, eligible, push, disclosed=disclosed)

    def __repr__(self) -> str:
        return f"BoundTopic({self.unbound!r}, {self._push.mode.value})"


class PublishedTopic(TopicView):
    """A channel's ``Topic`` as ``on_publish`` receives it for one PUBLISH.

    Its broadcasts carry the EVENT details naming the publisher (``disclose_me``) until the
    hook returned (``end``); other topics' broadcasts, and this one's afterwards (a task the
    hook started), never do: a route with ``disclose_publisher: false`` stays private.
    ``narrow`` (the PUBLISH's authid/authrole lists, wamp2/audience.py) picks the recipients
    of every broadcast through this view when it is sent, among who is subscribed then.
    """

    __slots__ = ("_disclosed", "_narrow")

    _disclosed: Mapping[str, Any] | None
    _narrow: Narrow | None

    def __init__(
        self, topic: Topic, disclosed: Mapping[str, Any] | None, narrow: Narrow | None = None
    ) -> None:
        super().__init__(topic)
        object.__setattr__(self, "_disclosed", disclosed)
        object.__setattr__(self, "_narrow", narrow)

    def broadcast(
        self,
        payload: Any,
        exclude: Collection[str] = (),
        eligible: Collection[str] = (),
        push: Push | None = None,
        *,
        disclosed: Mapping[str, Any] | None = None,
    ) -> int:
        """``Topic.broadcast`` on the channel topic, naming this PUBLISH's publisher until
        ``end``."""
        if disclosed is None and not self._ended:
            disclosed = self._disclosed
        if self._narrow is not None:
            exclude, eligible = self._narrow(exclude, eligible)
        return self.unbound.broadcast(payload, exclude, eligible, push, disclosed=disclosed)

    def __repr__(self) -> str:
        return f"PublishedTopic({self.unbound!r})"
