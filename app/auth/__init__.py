"""Who is connected: authentication providers → ``connection.user``, per-route authorization,
and the connection repository. Nothing here imports ``app.server`` at run time."""

from gos_web_socket.app.auth.authenticator import Authenticator
from gos_web_socket.app.auth.authorization import RouteRules, Rule
from gos_web_socket.app.auth.credentials import Credentials
from gos_web_socket.app.auth.jwt import JwtProvider
from gos_web_socket.app.auth.providers import AuthenticationProvider
from gos_web_socket.app.auth.repository import ConnectionRepository
from gos_web_socket.app.auth.user import ANONYMOUS, User
from gos_web_socket.app.close_codes import CLOSE_TOKEN_EXPIRED

__all__ = [
    "ANONYMOUS",
    "CLOSE_TOKEN_EXPIRED",
    "AuthenticationProvider",
    "Authenticator",
    "ConnectionRepository",
    "Credentials",
    "JwtProvider",
    "RouteRules",
    "Rule",
    "User",
]
