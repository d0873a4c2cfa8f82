/**
 * Load-time checks of a pipeline's actions, so an archive with unusable SQL names (or an
 * injection attempt through them) is refused when it is loaded rather than on every event.
 * The runner checks the same names again before writing; this only reports earlier.
 */
import type { PipelineFile, PipelineNode } from '@detector-worker/shared/pipeline/schema';
import type { PipelineProblem } from '@detector-worker/shared/pipeline/validate';
import { updateNameProblems } from './postgres-actions.js';
import { identifierProblem } from './sql.js';

export function checkPipelineActions(file: Pick<PipelineFile, 'pipeline' | 'redis' | 'postgresql' | 'initialRecord'>): PipelineProblem[] {
  const problems: PipelineProblem[] = [];
  const walk = (node: PipelineNode, path: string) => {
    for (const list of ['actions', 'parallelActions'] as const) {
      node[list]?.forEach((action, i) => {
        const at = `${path}.${list}[${i}]`;
        if (action.type === 'postgresql_update_combined') {
          for (const message of updateNameProblems(action)) problems.push({ path: at, message });
          if (!file.postgresql) problems.push({ path: at, message: 'postgresql_update_combined needs a "postgresql" server in pipeline.json' });
        } else if (!file.redis) problems.push({ path: at, message: `${action.type} needs a "redis" server in pipeline.json` });
      });
    }
    node.branches?.forEach((b, i) => walk(b, `${path}.branches[${i}]`));
  };
  walk(file.pipeline, '$.pipeline');
  const table = file.initialRecord?.table;
  if (table !== undefined) {
    const parts = table.split('.');
    if (parts.length > 2) problems.push({ path: '$.initialRecord.table', message: `table ${JSON.stringify(table)} must be "table" or "schema.table"` });
    else
      parts.forEach((p, i) => {
        const m = identifierProblem(p, parts.length === 2 && i === 0 ? 'schema' : 'table');
        if (m) problems.push({ path: '$.initialRecord.table', message: m });
      });
  }
  return problems;
}
