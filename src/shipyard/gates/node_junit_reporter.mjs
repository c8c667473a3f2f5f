// Shipyard's reporter for Node's built-in test runner: JUnit XML with the file of each test and
// its full name (nested names joined by " > "), which Node's own junit reporter leaves out.
import { relative } from 'node:path';

const esc = (s) => String(s)
  .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  .replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export default async function* shipyardJunit(source) {
  const stacks = new Map();
  const cases = [];
  for await (const event of source) {
    const d = event.data ?? {};
    const file = d.file ? relative(process.cwd(), d.file) : '';
    if (event.type === 'test:start') {
      const stack = stacks.get(file) ?? [];
      stack.length = d.nesting;
      stack.push(d.name);
      stacks.set(file, stack);
    } else if (event.type === 'test:pass' || event.type === 'test:fail') {
      if (d.details?.type === 'suite' && (event.type === 'test:pass'
        || d.details?.error?.failureType === 'subtestsFailed')) continue;
      const names = [...(stacks.get(file) ?? []).slice(0, d.nesting), d.name];
      let outcome = event.type === 'test:pass' ? 'passed' : 'failed';
      if (d.skip !== undefined) outcome = 'skipped';
      if (d.todo !== undefined) outcome = 'skipped';
      const err = d.details?.error;
      const message = err ? String(err.cause?.message ?? err.message ?? err) : '';
      cases.push({ file, name: names.join(' > '), outcome, message,
        time: (d.details?.duration_ms ?? 0) / 1000 });
    }
  }
  let xml = '<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n<testsuite name="node --test">\n';
  for (const c of cases) {
    xml += `<testcase classname="${esc(c.file)}" name="${esc(c.name)}" file="${esc(c.file)}" time="${c.time}">`;
    if (c.outcome === 'failed') xml += `<failure message="${esc(c.message)}"/>`;
    if (c.outcome === 'skipped') xml += `<skipped message="${esc(c.message)}"/>`;
    xml += '</testcase>\n';
  }
  yield xml + '</testsuite>\n</testsuites>\n';
}
