"""The gateway's exception tree. Foreign exceptions are mapped into it once, at the edge.

GatewayError
 ├── ConfigError              a setting, a database URL or a file cannot be used
 │    └── MasterKeyMismatch   the master key does not open the database's workspace keys
 ├── StoreError               the database failed or cannot be reached
 │    └── DatabaseUnavailable
 ├── InvalidInput             a request or a declaration is wrong: HTTP 400 naming the field
 ├── NotFound                 the object does not exist (or is not visible): HTTP 404
 ├── Conflict                 the object exists already / the write would clash: HTTP 409
 ├── Forbidden                the caller may not do this: HTTP 403
 ├── SecretUnreadable         a stored secret fails authentication (changed, or moved to another
 │                            variable): never returned as garbage
 ├── DestinationBlocked       an outbound connection's host or address is refused by the network
 │                            guard (link-local, cloud metadata, deny or allow list)
 └── LeaseLost                this instance no longer holds the trigger it writes for
                              (raised as gateway.listeners.lease.LeaseLost, naming the trigger)
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A setting, a database URL or a configuration file cannot be used."""


class MasterKeyMismatch(ConfigError):
    """The master key is not the one the database's workspace keys were wrapped with."""


class StoreError(GatewayError):
    """The database failed."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached."""


class InvalidInput(GatewayError):
    """Input is wrong; `field` names where, the message says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class NotFound(GatewayError):
    """The object does not exist, or the caller cannot see it."""


class Conflict(GatewayError):
    """The write clashes with an existing object."""


class Forbidden(GatewayError):
    """The caller is known but may not do this."""


class SecretUnreadable(GatewayError):
    """A stored secret value or key fails authentication: it was changed or moved."""


class DestinationBlocked(GatewayError):
    """The network guard refuses a connection the gateway would make on a user's behalf."""


class LeaseLost(GatewayError):
    """This instance no longer holds the lease of the trigger it tried to write for."""
