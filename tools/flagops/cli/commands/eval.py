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

    from ...errors import FlagopsError, InvalidInputError, UsageError
    from ...validation import did_you_mean, load_and_validate

    project, schemas, result = load_and_validate(env.root, tenants=tenants,
                                                 environment=environment if tenants else None, cwd=env.cwd)
    if result.errors:
        raise InvalidInputError(f"{len(result.errors)} error(s) in the input; fix them first "
                                "(flagops validate)", result.problems)
    if environment not in schemas.environments:
        raise UsageError(f'unknown environment "{environment}"{did_you_mean(environment, schemas.environments)}; '
                         f'known: {", ".join(schemas.environments)}')
    inventory = project.inventories.get(environment)
    if inventory is None:
        raise FlagopsError(f'no tenant inventory for environment "{environment}"'
                           + (f"; inventories: {', '.join(sorted(project.inventories))}" if project.inventories else ""),
                           hint=f"add tenants/{environment}.yaml or pass --tenants")
    tenant = next((t for t in inventory.tenants if t["slug"] == slug), None)
    if tenant is None:
        raise FlagopsError(f'tenant "{slug}" is not in the {environment} inventory'
                           f"{did_you_mean(slug, [t['slug'] for t in inventory.tenants])}")
    print_json(evaluate_all(project.flag_data(), tenant, environment))
    return 0
