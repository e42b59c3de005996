"""An import-linter contract that is an allow-list: the source packages import nothing else.

import-linter's own contracts name what is forbidden, so a package added later would be open
to the CLI and the web layer until someone remembered to forbid it. This contract names what
`source_modules` may import directly (besides themselves and third-party code); everything
else in the project breaks it. Indirect imports are not checked: a service may use the store.
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils
from importlinter.application.contract_utils import AlertLevel


def _within(module: str, packages: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


class AllowListContract(Contract):
    """Configuration: source_modules, allowed_modules (packages, which need not exist yet),
    ignore_imports (exact imports tolerated for now) and unmatched_ignore_imports_alerting."""

    type_name = "allowlist"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.ModuleField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(AlertLevel, default=AlertLevel.ERROR)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,
            unmatched_alerting=self.unmatched_ignore_imports_alerting,
        )
        sources = {m.name for m in self.source_modules}
        allowed = {m.name for m in self.allowed_modules}
        for name in sources:
            if name not in graph.modules:
                raise ValueError(f"Module '{name}' does not exist.")
        illegal: list[dict[str, Any]] = []
        for importer in sorted(m for m in graph.modules if _within(m, sources)):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if _within(imported, sources) or _within(imported, allowed):
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = tuple(d["line_number"] for d in details)
                illegal.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(
            kept=not illegal,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"illegal": illegal},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        allowed = ", ".join(sorted(m.name for m in self.allowed_modules))
        output.print_error(f"Only these may be imported: {allowed}.")
        output.new_line()
        for found in check.metadata["illegal"]:
            lines = ", ".join(f"l.{n}" for n in found["lines"])
            output.print_error(f"-   {found['importer']} -> {found['imported']} ({lines})", False)
        output.new_line()
