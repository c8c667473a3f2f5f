// Shipyard's reporter for Node's built-in test runner: JUnit XML with the file of each test and
// its full name (nested names joined by " > "), which Node's own junit reporter leaves out. A test
// file that failed as a whole (it crashed on load) is written with an empty name, and its message
// carries the error line the file printed ("Error: Cannot find module 'after'"), not just
// "test failed".
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';

const esc = (s) => String(s)
  .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  .replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

const DECISIVE = /^\s*(?:Uncaught )?[\w.$]*(?:Error|Exception)\b(?:\s*\[\w+\])?:? /;
const GENERIC = new Set(['test failed', 'Promise resolution is still pending but the event loop has already resolved']);

const running = process.env.SHIPYARD_RUNNING_FILE;
const mark = (text) => { if (running) { try { writeFileSync(running, text); } catch { /* gone */ } } };

const xmlCase = (c) => {
  let xml = `<testcase classname="${esc(c.file)}" name="${esc(c.name)}" file="${esc(c.file)}" time="${c.time}">`;
  if (c.outcome === 'failed') xml += `<failure message="${esc(c.message)}"/>`;
  if (c.outcome === 'skipped') xml += `<skipped message="${esc(c.message)}"/>`;
  return `${xml}</testcase>\n`;
};

// Cases are written as they end, so a run stopped part-way still leaves the finished ones; the
// file (Node runs each test file in its own process) being run is kept in $SHIPYARD_RUNNING_FILE.
export default async function* shipyardJunit(source) {
  const stacks = new Map();
  const stderr = new Map();
  yield '<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n<testsuite name="node --test">\n';
  for await (const event of source) {
    const d = event.data ?? {};
    const file = d.file ? relative(process.cwd(), d.file) : '';
    if (event.type === 'test:dequeue' && d.nesting === 0 && file) {
      mark(file);
    } else if (event.type === 'test:stderr' || event.type === 'test:stdout') {
      const lines = String(d.message ?? '').split('\n').filter((l) => DECISIVE.test(l));
      if (lines.length) stderr.set(file, lines[lines.length - 1].trim());
    } else if (event.type === 'test:start') {
      const stack = stacks.get(file) ?? [];
      stack.length = d.nesting;
      stack.push(d.name);
      stacks.set(file, stack);
    } else if (event.type === 'test:pass' || event.type === 'test:fail') {
      if (d.nesting === 0) mark('');
      if (d.details?.type === 'suite' && (event.type === 'test:pass'
        || d.details?.error?.failureType === 'subtestsFailed')) continue;
      const names = [...(stacks.get(file) ?? []).slice(0, d.nesting), d.name];
      let outcome = event.type === 'test:pass' ? 'passed' : 'failed';
      if (d.skip !== undefined) outcome = 'skipped';
      if (d.todo !== undefined) outcome = 'skipped';
      const err = d.details?.error;
      let message = err ? String(err.cause?.message ?? err.message ?? err) : '';
      if (outcome === 'failed' && GENERIC.has(message) && stderr.has(file)) {
        message = `${message}: ${stderr.get(file)}`;
      }
      const whole = d.nesting === 0 && d.file && (d.name === d.file || d.name === file);
      yield xmlCase({ file, name: whole ? '' : names.join(' > '), outcome, message,
        time: (d.details?.duration_ms ?? 0) / 1000 });
    }
  }
  yield '</testsuite>\n</testsuites>\n';
}
