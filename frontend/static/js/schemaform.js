// A form built from the flat JSON schema an MCP server sends with an elicitation: one labelled control per property
// (text, number, checkbox, select for an enum, checkboxes for a multi-select), and the typed answer read back.
// Titles, descriptions, defaults and enum labels come from the server, so all of them are inserted as text.

import { h } from './dom.js';

const STRING_INPUT_TYPES = { email: 'email', uri: 'url', date: 'date', 'date-time': 'datetime-local' };

let formCount = 0;

function choicesOf(schema) {
  // MCP's enum shapes: `enum` (+ the legacy `enumNames`), or `oneOf`/`anyOf` of `{const, title}`.
  if (Array.isArray(schema?.enum)) {
    const names = Array.isArray(schema.enumNames) ? schema.enumNames : [];
    return schema.enum.map((value, index) => ({ value: String(value), label: String(names[index] ?? value) }));
  }
  const options = Array.isArray(schema?.oneOf) ? schema.oneOf : Array.isArray(schema?.anyOf) ? schema.anyOf : null;
  if (options?.every((option) => option && 'const' in option)) {
    return options.map((option) => ({ value: String(option.const), label: String(option.title ?? option.const) }));
  }
  return null;
}

function setBounds(input, schema, { min, max }) {
  if (typeof schema[min] === 'number') input.setAttribute('min', String(schema[min]));
  if (typeof schema[max] === 'number') input.setAttribute('max', String(schema[max]));
}

/** One property: {name, title, element (the whole field), focusTarget, read() -> {ok, value?, skip?, problem?}}. */
function buildField(prefix, name, schema, required) {
  const id = `${prefix}-${name.replace(/[^\w-]/g, '_')}`;
  const title = String(schema.title || name);
  const hintId = `${id}-hint`;
  const description = typeof schema.description === 'string' && schema.description ? schema.description : '';
  const hint = description ? h('p', { class: 'field-hint', id: hintId, text: description }) : null;
  const requiredMark = required ? h('span', { class: 'required-mark', text: ' (required)' }) : null;
  const type = schema.type;
  const common = { id, name, 'aria-describedby': hint ? hintId : undefined, required: required || undefined };

  if (type === 'boolean') {
    const box = h('input', { ...common, type: 'checkbox', required: undefined });
    box.checked = schema.default === true;
    return {
      name,
      title,
      focusTarget: box,
      element: h(
        'div',
        { class: 'field field-check' },
        h('div', { class: 'field-check-row' }, box, h('label', { for: id }, title, requiredMark)),
        hint,
      ),
      read: () => ({ ok: true, value: box.checked }),
    };
  }

  if (type === 'array') {
    const choices = choicesOf(schema.items) ?? [];
    const defaults = new Set(Array.isArray(schema.default) ? schema.default.map(String) : []);
    const boxes = choices.map((choice, index) => {
      const box = h('input', { type: 'checkbox', id: `${id}-${index}`, value: choice.value });
      box.checked = defaults.has(choice.value);
      return h('div', { class: 'field-check-row' }, box, h('label', { for: `${id}-${index}`, text: choice.label }));
    });
    const inputs = () => boxes.map((row) => row.querySelector('input'));
    return {
      name,
      title,
      focusTarget: inputs()[0] ?? null,
      element: h(
        'fieldset',
        { class: 'field field-group', 'aria-describedby': hint ? hintId : undefined },
        h('legend', {}, title, requiredMark),
        hint,
        boxes,
      ),
      read: () => {
        const value = inputs()
          .filter((box) => box.checked)
          .map((box) => box.value);
        if (required && value.length === 0) return { ok: false, problem: `Choose at least one: ${title}.` };
        const { minItems, maxItems } = schema;
        if (typeof minItems === 'number' && value.length < minItems) {
          return { ok: false, problem: `Choose at least ${minItems}: ${title}.` };
        }
        if (typeof maxItems === 'number' && value.length > maxItems) {
          return { ok: false, problem: `Choose at most ${maxItems}: ${title}.` };
        }
        return { ok: true, value };
      },
    };
  }

  let control;
  const choices = choicesOf(schema);
  if (choices) {
    control = h('select', common);
    if (!required || schema.default === undefined) control.append(h('option', { value: '', text: 'Choose…' }));
    for (const choice of choices) control.append(h('option', { value: choice.value, text: choice.label }));
    if (schema.default !== undefined) control.value = String(schema.default);
  } else if (type === 'number' || type === 'integer') {
    control = h('input', { ...common, type: 'number', step: type === 'integer' ? '1' : 'any' });
    setBounds(control, schema, { min: 'minimum', max: 'maximum' });
    if (typeof schema.default === 'number') control.value = String(schema.default);
  } else {
    control = h('input', { ...common, type: STRING_INPUT_TYPES[schema.format] ?? 'text', autocomplete: 'off' });
    if (typeof schema.minLength === 'number') control.setAttribute('minlength', String(schema.minLength));
    if (typeof schema.maxLength === 'number') control.setAttribute('maxlength', String(schema.maxLength));
    if (typeof schema.default === 'string') control.value = schema.default;
  }
  return {
    name,
    title,
    focusTarget: control,
    element: h('div', { class: 'field' }, h('label', { for: id }, title, requiredMark), control, hint),
    read: () => {
      if (!control.checkValidity()) return { ok: false, problem: `${title}: ${control.validationMessage}` };
      const raw = control.value;
      if (raw === '') return { ok: true, skip: true };
      if (type === 'number' || type === 'integer') {
        const number = Number(raw);
        if (!Number.isFinite(number) || (type === 'integer' && !Number.isInteger(number))) {
          return { ok: false, problem: `${title}: enter ${type === 'integer' ? 'a whole number' : 'a number'}.` };
        }
        return { ok: true, value: number };
      }
      return { ok: true, value: raw };
    },
  };
}

export class SchemaForm {
  /** @param {{properties?: object, required?: string[]}} schema */
  constructor(schema) {
    formCount += 1;
    const prefix = `schema-form-${formCount}`;
    const properties = schema && typeof schema.properties === 'object' ? schema.properties : {};
    const required = new Set(Array.isArray(schema?.required) ? schema.required : []);
    this.fields = Object.entries(properties).map(([name, property]) =>
      buildField(prefix, name, property ?? {}, required.has(name)),
    );
    this.element = h('div', { class: 'schema-form' }, ...this.fields.map((field) => field.element));
  }

  /** The first control, to take the focus. */
  get firstControl() {
    return this.fields.find((field) => field.focusTarget)?.focusTarget ?? null;
  }

  /**
   * The answer: `{content}` with numbers as numbers and booleans as booleans, or `{problem, field}` for the first
   * field that is not filled in right (the browser's own validation message, or ours).
   */
  read() {
    const content = {};
    for (const field of this.fields) {
      const result = field.read();
      if (!result.ok) return { problem: result.problem, field };
      if (!result.skip) content[field.name] = result.value;
    }
    return { content };
  }

  /** What was sent, as `[label, value]` text pairs for the answered card. */
  summary(content) {
    return this.fields
      .filter((field) => field.name in content)
      .map((field) => {
        const value = content[field.name];
        if (typeof value === 'boolean') return [field.title, value ? 'Yes' : 'No'];
        return [field.title, Array.isArray(value) ? value.join(', ') : String(value)];
      });
  }

  setDisabled(disabled) {
    for (const control of this.element.querySelectorAll('input, select, textarea')) control.disabled = disabled;
  }
}
