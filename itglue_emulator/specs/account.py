"""The account itself: users, groups, usage metrics, the activity log and exports."""

from __future__ import annotations

from .spec import COMMON_SORT, READ, Spec, listed

ACCOUNT_SPECS: tuple[Spec, ...] = (
    # users are listed, shown and updated (no create or delete through the API)
    listed(
        "users",
        "users",
        "User",
        "User",
        routes=READ | {"update"},
        writable=frozenset({"first-name", "last-name", "name", "title", "phone", "avatar"}),
        filters={"email": "str", "role-name": "str"},
    ),
    listed("groups", "groups", "Group", "Group"),
    Spec(
        "user_metrics",
        "user-metrics",
        "UserMetric",
        "User Metric",
        filters={
            "user-id": "int",
            "organization-id": "int",
            "resource-type": "str",
            "date": "date",
        },
        sorts=COMMON_SORT | {"date"},
        routes=frozenset({"index"}),
        date_window_days=7,
    ),
    Spec(
        "logs",
        "logs",
        "Log",
        "Log",
        filters={"created-at": "date"},
        sorts=COMMON_SORT,
        routes=frozenset({"index"}),
    ),
    Spec(
        "exports",
        "exports",
        "Export",
        "Export",
        writable=frozenset({"organization-id", "include-logs", "include-attachments"}),
        references={"organization-id": ("organizations", False, "organization")},
        filters={"id": "id", "organization-id": "int"},
        sorts=COMMON_SORT,
        routes=READ | {"create", "destroy"},
        defaults={"include-logs": False, "state": "pending", "download-url": None},
    ),
)
