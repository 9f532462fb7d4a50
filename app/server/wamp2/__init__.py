"""WAMP v2 Basic Profile (broker and dealer roles), one concern a module.

A connection whose client chose ``wamp.2.json`` or ``wamp.2.msgpack`` gets a ``Wamp2Session``
(session.py). It parses and encodes v2 and nothing else; its verbs go to the same ``Broker`` as
v1's:

- codes.py: message types, error and close URIs, the router's roles, and how a ``Failure`` or a
  close code becomes a URI;
- serializers.py: JSON and MessagePack, message list to frame and back;
- parsing.py: the checks every incoming message passes (ids, dicts, arguments, options);
- session.py: the session contract and the dispatch of each message type to its role;
- answers.py: sending, the request queue, each request answered at most once;
- handshake.py: HELLO / CHALLENGE / AUTHENTICATE / WELCOME / ABORT / GOODBYE;
- pubsub.py: SUBSCRIBE / UNSUBSCRIBE / PUBLISH and the ``_recover`` replay;
- rpc.py: CALL / RESULT / CANCEL, to a client's procedure or the server's RpcHandlers;
- callee.py: REGISTER / UNREGISTER / YIELD and a callee's ERROR;
- dealer.py, registrations.py, invocations.py, calls.py: the calls between clients (one
  dealer a process), relay.py: the same across ``server.workers`` (the parent relays between
  the dealers).

Session ids are integers in v2 and decimal strings everywhere else (``connection.session_id``
of session 42 is ``"42"``), so PUBLISH ``exclude``/``eligible`` mean the same in both versions;
a subscription id belongs to the topic, not to the subscriber, so one EVENT frame serves every
v2 subscriber of the topic (see ``Topic.broadcast``). Protocol violations are answered with
ABORT ``wamp.error.protocol_violation`` and the connection is closed; nothing a client sends
reaches other clients' sessions.
"""
