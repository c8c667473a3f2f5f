'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');

const { greet, greetAll } = require('../greet');

describe('greet', () => {
  test('says hello', () => {
    assert.equal(greet('Ada'), 'Hello, Ada!');
  });

  test('greets the world without a name', () => {
    assert.equal(greet(), 'Hello, world!');
    assert.equal(greet('   '), 'Hello, world!');
  });
});

test('greetAll joins names', () => {
  assert.equal(greetAll(['Ann', 'Bob', 'Cy']), 'Hello, Ann, Bob and Cy!');
  assert.equal(greetAll(['Ann']), 'Hello, Ann!');
  assert.equal(greetAll([]), 'Hello, world!');
});
