"""Portal models: people, teams, sessions and MFA devices."""

from portal.models.mfa import BackupCode, BackupCodeDevice, TOTPDevice
from portal.models.people import Team, User
from portal.models.sessions import Session

__all__ = ["BackupCode", "BackupCodeDevice", "Session", "TOTPDevice", "Team", "User"]
