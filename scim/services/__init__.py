"""State changes a directory makes through SCIM: people and teams created, changed, moved,
deactivated and deleted.

Every function runs in one transaction, acts as the system actor with the SCIM token's name in
each event (``source`` is ``scim:<token name>``), and leaves joining, moving, leaving and
returning to ``accessreq.services.lifecycle``, which grants birthright access, flags grants for
review and revokes access. Attribute changes are audited here as ``user.changed``.

A person is in at most one team (``User.team``): adding them to a group moves them there from
their previous team; removing them from their team's group leaves them without one. Deleting a
person or a group is never an erasure: a deleted person has left (``person_leave``) and a
deleted group's members have no team any more; both rows stay for the audit trail and are hidden
from SCIM from then on (a later POST with the same userName or displayName links them again).
"""

from scim.services.people import scim_user_create, scim_user_delete, scim_user_update
from scim.services.teams import scim_group_create, scim_group_delete, scim_group_update

__all__ = [
    "scim_group_create",
    "scim_group_delete",
    "scim_group_update",
    "scim_user_create",
    "scim_user_delete",
    "scim_user_update",
]
