// Checks the PowerSync side of the deployment with PowerSync's own code:
//
//   node check.mjs SERVICE_YAML SYNC_CONFIG TABLES_JSON
//
// SERVICE_YAML is validated against @powersync/service-schema, with unknown
// keys refused (the published schema allows any key, so a typo such as
// `client_auht` would pass it and be ignored by the service).
// SYNC_CONFIG is parsed by @powersync/service-sync-rules against TABLES_JSON
// ([{"schema", "table", "columns": [{"name", "type"}]}] — the tables the
// `powersync` publication replicates); any error or warning fails.
// Exits 1 with one line per problem.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import YAML from 'yaml';
import { SqlSyncRules, StaticSchema } from '@powersync/service-sync-rules';

const here = dirname(fileURLToPath(import.meta.url));
const [serviceFile, syncFile, tablesFile] = process.argv.slice(2);
if (!serviceFile || !syncFile || !tablesFile) {
  console.error('usage: node check.mjs SERVICE_YAML SYNC_CONFIG TABLES_JSON');
  process.exit(2);
}
const problems = [];

// ---- service.yaml --------------------------------------------------------

// `!env NAME` as the service resolves it; the value does not matter here.
const envTag = {
  tag: '!env',
  resolve: (name) => {
    if (!name.startsWith('PS_')) problems.push(`${serviceFile}: !env ${name}: only PS_ variables are substituted`);
    return `\${${name}}`;
  }
};
const service = YAML.parse(readFileSync(serviceFile, 'utf8'), { customTags: [envTag] });

/** The published schema with `additionalProperties: false` wherever it lists properties. */
function strict(schema) {
  if (Array.isArray(schema)) return schema.map(strict);
  if (schema === null || typeof schema !== 'object') return schema;
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] = key === 'properties' ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strict(v)])) : strict(value);
  }
  if (out.properties && out.additionalProperties === true) out.additionalProperties = false;
  return out;
}

// The package does not export the JSON file; read it from node_modules.
const schema = JSON.parse(
  readFileSync(join(here, 'node_modules/@powersync/service-schema/json-schema/powersync-config.json'), 'utf8')
);
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(strict(schema));
if (!validate(service)) {
  // anyOf reports every branch; the branch-free messages are the useful ones.
  const seen = new Set();
  for (const e of validate.errors) {
    if (e.keyword === 'anyOf') continue;
    const line = `${serviceFile}: ${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`;
    if (!seen.has(line)) seen.add(line), problems.push(line);
  }
}

// ---- sync config -----------------------------------------------------------

// The app's tables (schema `public`) and uplink's (schema `uplink`).
const tables = JSON.parse(readFileSync(tablesFile, 'utf8')) ?? [];
const schemaNames = [...new Set(['public', ...tables.map((t) => t.schema)])];
const sourceSchema = new StaticSchema([
  {
    tag: 'default',
    schemas: schemaNames.map((name) => ({
      name,
      tables: tables
        .filter((t) => t.schema === name)
        .map((t) => ({
          name: t.table,
          columns: t.columns.map((c) => ({ name: c.name, internal_type: c.type, pg_type: c.type }))
        }))
    }))
  }
]);
const parsed = SqlSyncRules.fromYaml(readFileSync(syncFile, 'utf8'), {
  defaultSchema: 'public',
  schema: sourceSchema,
  throwOnError: false
});
for (const e of parsed.errors) {
  const missing = /Table (\w+\.\w+) not found/.exec(e.message);
  problems.push(`${syncFile}: ${e.type}: ${e.message}${missing ? ' (is it in the `powersync` publication?)' : ''}`);
}

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`ok: ${serviceFile} (PowerSync config schema), ${syncFile} (${tables.length} published tables)`);
