// Shipyard's reporter for mocha: JUnit XML with the file of each test and its full title path
// (describe titles and the test's, joined by " > "), which mocha's xunit reporter joins with
// spaces and so cannot be told apart. Passed with --reporter and --reporter-option output=FILE.
// Prints one line per test to stdout for the log. A test still running when the run is stopped
// (SIGINT) is written with <error type="interrupted">.
'use strict';
const fs = require('fs');
const path = require('path');

const esc = (s) => String(s)
  .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  .replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

const titles = (runnable) => (typeof runnable.titlePath === 'function'
  ? runnable.titlePath() : [runnable.fullTitle ? runnable.fullTitle() : runnable.title]);

const fileOf = (runnable) => {
  let r = runnable;
  while (r && !r.file) r = r.parent;
  return r && r.file ? path.relative(process.cwd(), r.file).split(path.sep).join('/') : '';
};

function ShipyardJunit(runner, options) {
  const opts = (options && (options.reporterOption || options.reporterOptions)) || {};
  const output = path.resolve(opts.output || 'mocha-junit.xml');
  const runningFile = process.env.SHIPYARD_RUNNING_FILE;
  const mark = (text) => { if (runningFile) { try { fs.writeFileSync(runningFile, text); } catch (e) { /* gone */ } } };
  let running = null;
  let ended = false;
  fs.mkdirSync(path.dirname(output), { recursive: true });
  fs.writeFileSync(output, '<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n<testsuite name="mocha">\n');

  // Each case is appended as it ends: a run killed mid-way (a test in a busy loop never lets a
  // signal handler run) still leaves the finished ones, and the running one in the marker file.
  const add = (runnable, outcome, message, detail) => {
    const c = { file: fileOf(runnable), name: titles(runnable).join(' > '), time: (runnable.duration || 0) / 1000 };
    let xml = `<testcase classname="${esc(c.file)}" name="${esc(c.name)}" file="${esc(c.file)}" time="${c.time}">`;
    if (outcome === 'failed') xml += `<failure message="${esc(message)}">${esc(detail)}</failure>`;
    if (outcome === 'skipped') xml += '<skipped/>';
    if (outcome === 'interrupted') xml += `<error type="interrupted" message="${esc(message)}"/>`;
    fs.appendFileSync(output, `${xml}</testcase>\n`);
    const word = { passed: 'ok', failed: 'not ok', skipped: 'skip', interrupted: 'interrupted' };
    process.stdout.write(`${word[outcome]} ${c.file}::${c.name}\n`);
    if (outcome === 'failed') process.stdout.write(`  ${String(detail || message).split('\n').join('\n  ')}\n`);
  };

  const end = () => {
    if (ended) return;
    ended = true;
    if (running) add(running, 'interrupted', 'the run was stopped while this test ran');
    mark('');
    fs.appendFileSync(output, '</testsuite>\n</testsuites>\n');
  };

  runner.on('test', (test) => { running = test; mark(`${fileOf(test)}::${titles(test).join(' > ')}`); });
  runner.on('test end', () => { running = null; mark(''); });
  runner.on('pass', (test) => add(test, 'passed'));
  runner.on('pending', (test) => add(test, 'skipped'));
  runner.on('fail', (runnable, err) => {
    const message = err ? `${err.name || 'Error'}: ${err.message}` : 'failed';
    add(runnable, 'failed', message, err && err.stack ? String(err.stack) : message);
    if (running === runnable) running = null;
  });
  runner.once('end', end);
  process.once('SIGINT', () => { end(); process.exit(130); });
}

module.exports = ShipyardJunit;
