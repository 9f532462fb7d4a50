"""Who is connected: authentication providers → ``connection.user``, per-route authorization,
and the connection repository. Nothing here imports ``app.server`` at run time."""

from app.auth.authenticator import CLOSE_TOKEN_EXPIRED, Authenticator
from app.auth.authorization import RouteRules, Rule
from app.auth.credentials import Credentials
from app.auth.jwt import JwtProvider
from app.auth.providers import AuthenticationProvider
from app.auth.repository import ConnectionRepository
from app.auth.user import ANONYMOUS, User

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
