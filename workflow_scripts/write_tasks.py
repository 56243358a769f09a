"""Write the config's `tasks:` (label, title) and `table_tasks:` as results/tables/tasks.json (ARCHITECTURE "Result
paths"), the file `smart tables` reads to know which task fills which paper table.

Called by the `tasks_json` rule with the mapping rendered by rules/common.smk `tasks_json_arg`.
"""

from __future__ import annotations

import sys
from typing import Any

from smart.eval.tables import task_map
from workflow_scripts.json_record import write_record


def tasks_record(data: Any) -> dict[str, Any]:
    """``data`` unchanged once :func:`smart.eval.tables.task_map` accepts it (every table that needs a task names a
    defined one), so a bad mapping fails here rather than in `smart tables`."""
    task_map(data, "config tasks/table_tasks")
    return data


def main(argv: list[str] | None = None) -> int:
    return write_record(argv, __doc__.splitlines()[0], "tasks", tasks_record)


if __name__ == "__main__":
    sys.exit(main())
