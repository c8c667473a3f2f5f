'use strict';

const input = document.querySelector('.new-todo');
const list = document.querySelector('.todo-list');
const count = document.querySelector('.todo-count');
const errorBox = document.querySelector('.error');

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (!response.ok) {
    const detail = await response.json().catch(() => ({}));
    throw new Error(detail.error || `${method} ${path} answered ${response.status}`);
  }
  return response.status === 204 ? null : response.json();
}

function renderTodo(todo) {
  const item = document.createElement('li');
  item.dataset.id = todo.id;
  item.classList.toggle('completed', todo.completed);

  const toggle = document.createElement('input');
  toggle.type = 'checkbox';
  toggle.className = 'toggle';
  toggle.checked = todo.completed;
  toggle.setAttribute('aria-label', `Mark "${todo.title}" done`);
  toggle.addEventListener('change', () =>
    run(() => api('PATCH', `/api/todos/${todo.id}`, { completed: toggle.checked })));

  const title = document.createElement('span');
  title.className = 'title';
  title.textContent = todo.title;

  const destroy = document.createElement('button');
  destroy.className = 'destroy';
  destroy.textContent = '×';
  destroy.setAttribute('aria-label', `Delete "${todo.title}"`);
  destroy.addEventListener('click', () => run(() => api('DELETE', `/api/todos/${todo.id}`)));

  item.append(toggle, title, destroy);
  return item;
}

async function load() {
  const todos = await api('GET', '/api/todos');
  list.replaceChildren(...todos.map(renderTodo));
  const left = todos.filter((todo) => !todo.completed).length;
  count.textContent = `${left} ${left === 1 ? 'item' : 'items'} left`;
}

// Performs a change, then re-renders from the server; shows what went wrong, if anything.
async function run(change) {
  try {
    await change();
    errorBox.textContent = '';
  } catch (err) {
    errorBox.textContent = err.message;
  }
  await load();
}

input.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter') return;
  const title = input.value.trim();
  if (!title) return;
  input.value = '';
  run(() => api('POST', '/api/todos', { title }));
});

load();
