'use strict';

/**
 * Returns a greeting for `name`; an empty or missing name greets the world.
 * @param {string} [name]
 * @returns {string}
 */
function greet(name) {
  const who = typeof name === 'string' ? name.trim() : '';
  return `Hello, ${who || 'world'}!`;
}

/**
 * Greets several people in one sentence: "Hello, Ann, Bob and Cy!".
 * @param {string[]} names
 * @returns {string}
 */
function greetAll(names) {
  const list = names.map((n) => n.trim()).filter(Boolean);
  if (list.length === 0) return greet();
  if (list.length === 1) return greet(list[0]);
  return greet(`${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`);
}

module.exports = { greet, greetAll };
