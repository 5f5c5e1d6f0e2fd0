// Runs graphql-http's server audit (GraphQL over HTTP conformance) against a
// running Lockbox: node audit-http.mjs http://127.0.0.1:8000/graphql
//
// Prints one JSON line per audit ({id, name, status, reason}) and exits 1 if
// any audit is not "ok" (a "warn" is a SHOULD the server does not meet).
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit-http.mjs <graphql endpoint URL>');
  process.exit(2);
}

const results = await auditServer({ url });
for (const result of results) {
  console.log(
    JSON.stringify({
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.reason,
    }),
  );
}
const failed = results.filter((result) => result.status !== 'ok');
console.error(`${results.length - failed.length} of ${results.length} audits passed`);
process.exit(failed.length ? 1 : 0);
