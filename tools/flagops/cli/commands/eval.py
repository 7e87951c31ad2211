"""``flagops eval``: every flag's value for one tenant, as JSON."""

from __future__ import annotations

from typing import Optional

import click

from ..app import TENANTS_HELP, Env, pass_env, print_json


@click.command(name="eval")
@click.argument("slug")
@click.option("--env", "environment", required=True, metavar="ENV", help="Environment to evaluate in.")
@click.option("--tenants", metavar="SOURCE", help=TENANTS_HELP)
@pass_env
def command(env: Env, slug: str, environment: str, tenants: Optional[str]) -> int:
    """Print every flag's value for one tenant as JSON: {KEY: BOOL}."""
    from flagops_client.evaluation import evaluate_all

    from ...errors import FlagopsError, UnknownTenantError, require_environment
    from ...validation import require_valid

    project, schemas, _ = require_valid(env.root, tenants=tenants, environment=environment if tenants else None,
                                        cwd=env.cwd)
    require_environment(environment, schemas.environments)
    inventory = project.inventories.get(environment)
    if inventory is None:
        raise FlagopsError(f'no tenant inventory for environment "{environment}"'
                           + (f"; inventories: {', '.join(sorted(project.inventories))}" if project.inventories else ""),
                           hint=f"add tenants/{environment}.yaml or pass --tenants")
    tenant = next((t for t in inventory.tenants if t["slug"] == slug), None)
    if tenant is None:
        raise UnknownTenantError(slug, environment, [t["slug"] for t in inventory.tenants])
    print_json(evaluate_all(project.flag_data(), tenant, environment))
    return 0
