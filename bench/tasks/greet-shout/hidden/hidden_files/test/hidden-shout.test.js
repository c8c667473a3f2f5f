'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { shout } = require('../greet');

describe('shout, judged', () => {
  test('blank names greet the world', () => {
    assert.equal(shout('Bo'), 'HELLO, BO!');
    assert.equal(shout(), 'HELLO, WORLD!');
    assert.equal(shout('   '), 'HELLO, WORLD!');
  });
});
