// The parameters form, generated from the request schema in /openapi.json so it never goes stale.
// enum -> select, boolean -> checkbox, integer/number -> number input with its range, string -> text,
// anyOf/oneOf of several types -> text parsed by what the schema accepts, object -> fieldset;
// nullable fields may stay empty (not sent). Only values that differ from the default are sent.

const NOT_SET = "";

/** The JSON Schema of operation `operationId`'s JSON body, and the document to resolve $refs in. */
export function requestSchema(doc, operationId = "submit") {
  for (const item of Object.values(doc.paths || {})) {
    for (const op of Object.values(item)) {
      if (op && op.operationId === operationId) {
        const schema = op.requestBody?.content?.["application/json"]?.schema;
        if (schema) return resolve(doc, schema);
      }
    }
  }
  throw new Error(`the API document has no request body for ${operationId}`);
}

function resolve(doc, schema) {
  let s = schema || {};
  for (let i = 0; s.$ref && i < 32; i++) {
    const path = s.$ref.replace(/^#\//, "").split("/");
    const { $ref, ...rest } = s;
    s = { ...path.reduce((node, part) => node?.[part], doc), ...rest };
  }
  return s;
}

const isNull = (doc, s) => {
  const r = resolve(doc, s);
  return r.type === "null" || (r.const === null);
};

/** What kind of control a schema needs: {kind, schema, nullable, alts?}. */
function classify(doc, raw) {
  let schema = resolve(doc, raw);
  let nullable = false;
  const alts = schema.anyOf || schema.oneOf;
  if (alts) {
    const rest = alts.filter((a) => !isNull(doc, a));
    nullable = rest.length < alts.length;
    const { anyOf, oneOf, ...outer } = schema; // description, default, title live beside anyOf
    if (rest.length === 1) {
      const inner = classify(doc, rest[0]);
      return { ...inner, schema: { ...inner.schema, ...outer }, nullable: true };
    }
    const choices = rest.map((a) => resolve(doc, a));
    if (choices.every((a) => a.enum || a.const !== undefined)) { // e.g. "auto" | 8 | 10 written as two enums
      const values = choices.flatMap((a) => a.enum || [a.const]);
      return { kind: "enum", schema: { ...outer, enum: values }, nullable };
    }
    return { kind: "union", schema: outer, nullable, alts: rest.map((a) => resolve(doc, a)) };
  }
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((t) => t !== "null");
    nullable = types.length < schema.type.length;
    if (types.length === 1) schema = { ...schema, type: types[0] };
    else return { kind: "union", schema, nullable, alts: types.map((type) => ({ type })) };
  }
  if (schema.enum) return { kind: "enum", schema, nullable: nullable || schema.enum.includes(null) };
  if (schema.const !== undefined) return { kind: "enum", schema: { ...schema, enum: [schema.const] }, nullable };
  switch (schema.type) {
    case "boolean":
      return { kind: "boolean", schema, nullable };
    case "integer":
    case "number":
      return { kind: "number", schema, nullable };
    case "string":
      return { kind: "string", schema, nullable };
    case "object":
      return schema.properties ? { kind: "object", schema, nullable } : { kind: "json", schema, nullable };
    default:
      return { kind: "json", schema, nullable };
  }
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  node.append(...children.filter(Boolean));
  return node;
}

/** Text with `code` spans (the schema's descriptions are Markdown-ish) as nodes: never innerHTML. */
function richText(text) {
  return String(text)
    .split("`")
    .map((part, i) => (i % 2 ? el("code", { text: part }) : document.createTextNode(part)));
}

function rangeText(s) {
  const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? `>${s.exclusiveMinimum}` : undefined);
  const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? `<${s.exclusiveMaximum}` : undefined);
  if (lo !== undefined && hi !== undefined) return `${lo} to ${hi}`;
  if (lo !== undefined) return `at least ${lo}`;
  if (hi !== undefined) return `at most ${hi}`;
  return "";
}

function typeText(info) {
  if (info.kind === "union") return info.alts.map((a) => (a.enum ? a.enum.map((v) => JSON.stringify(v)).join(" | ") : a.type || "value")).join(" or ");
  if (info.kind === "enum") return "one of " + info.schema.enum.map((v) => JSON.stringify(v)).join(", ");
  return info.schema.type || "JSON";
}

/** One field: its control, and how to read, compare and reset it. */
class Field {
  constructor(doc, name, path, rawSchema, required) {
    this.name = name;
    this.path = path;
    this.info = classify(doc, rawSchema);
    this.required = required;
    const s = this.info.schema;
    this.hasDefault = Object.prototype.hasOwnProperty.call(s, "default");
    this.default = s.default;
    this.id = "f-" + path.join("-");
    this.children = [];
    this.node = this.info.kind === "object" ? this.buildObject(doc) : this.buildControl();
  }

  describe() {
    const s = this.info.schema;
    const bits = [];
    if (s.description) bits.push(s.description);
    const facts = [typeText(this.info)];
    const range = rangeText(s);
    if (range) facts.push(range);
    if (this.hasDefault) facts.push(`default ${this.default === null ? "not set" : JSON.stringify(this.default)}`);
    else if (this.required) facts.push("required");
    if (this.info.nullable) facts.push("may be left empty");
    bits.push(`(${facts.join("; ")})`);
    return bits.join(" ");
  }

  buildObject(doc) {
    const s = this.info.schema;
    const required = new Set(s.required || []);
    const fieldset = el("fieldset", { class: "nested", id: this.id, "aria-describedby": `${this.id}-desc` });
    fieldset.append(el("legend", { text: this.name }), el("p", { class: "hint", id: `${this.id}-desc` }, ...richText(this.describe())));
    for (const [name, sub] of Object.entries(s.properties)) {
      const child = new Field(doc, name, [...this.path, name], sub, required.has(name));
      this.children.push(child);
      fieldset.append(child.node);
    }
    this.error = el("p", { class: "field-error", id: `${this.id}-err`, hidden: true });
    fieldset.append(this.error);
    return fieldset;
  }

  buildControl() {
    const { kind, schema: s, nullable } = this.info;
    const describedBy = `${this.id}-desc ${this.id}-err`;
    let control;
    if (kind === "enum" || (kind === "boolean" && (nullable || !this.hasDefault))) {
      const values = kind === "enum" ? s.enum.filter((v) => v !== null) : [true, false];
      control = el("select", { id: this.id, name: this.path.join("."), "aria-describedby": describedBy });
      if (nullable || !this.hasDefault || this.default === null) control.append(el("option", { value: NOT_SET, text: "(not set)" }));
      for (const v of values) control.append(el("option", { value: JSON.stringify(v), text: String(v) }));
      this.read = () => (control.value === NOT_SET ? undefined : JSON.parse(control.value));
      this.write = (v) => { control.value = v === undefined || v === null ? NOT_SET : JSON.stringify(v); };
    } else if (kind === "boolean") {
      control = el("input", { id: this.id, type: "checkbox", name: this.path.join("."), "aria-describedby": describedBy });
      this.read = () => control.checked;
      this.write = (v) => { control.checked = v === true; };
    } else if (kind === "number") {
      const integer = s.type === "integer";
      control = el("input", {
        id: this.id, type: "number", name: this.path.join("."), "aria-describedby": describedBy,
        min: s.minimum ?? s.exclusiveMinimum, max: s.maximum ?? s.exclusiveMaximum, step: integer ? 1 : "any", inputmode: integer ? "numeric" : "decimal",
      });
      this.read = () => {
        const t = control.value.trim();
        if (t === "") return control.validity.badInput ? NaN : undefined;
        return Number(t);
      };
      this.write = (v) => { control.value = v === undefined || v === null ? "" : String(v); };
      this.check = (v) => (v !== undefined && (!Number.isFinite(v) || (integer && !Number.isInteger(v))) ? `${this.path.join(".")}: enter ${integer ? "a whole number" : "a number"}` : null);
    } else {
      const textual = kind === "string";
      control = el("input", {
        id: this.id, type: textual && s.format === "uri" ? "url" : "text", name: this.path.join("."), "aria-describedby": describedBy,
        spellcheck: "false", placeholder: kind === "union" ? typeText(this.info) : kind === "json" ? "JSON" : s.examples?.[0],
      });
      this.read = () => {
        const t = control.value;
        if (t.trim() === "") return undefined;
        return textual ? t : kind === "union" ? this.parseUnion(t.trim()) : this.parseJson(t);
      };
      this.write = (v) => { control.value = v === undefined || v === null ? "" : textual || typeof v === "string" ? String(v) : kind === "union" ? String(v) : JSON.stringify(v); };
    }
    this.control = control;
    const label = el("label", { for: this.id }, el("span", { class: "name", text: this.name }));
    const desc = el("span", { class: "hint", id: `${this.id}-desc` }, ...richText(this.describe()));
    this.error = el("span", { class: "field-error", id: `${this.id}-err`, hidden: true });
    const wrap = el("div", { class: `field field-${kind}` });
    if (control.type === "checkbox") wrap.append(el("div", { class: "check" }, control, label), desc, this.error);
    else wrap.append(label, control, desc, this.error);
    return wrap;
  }

  // "60000/1001" stays a string, "59.94" becomes a number, where the schema takes both.
  parseUnion(t) {
    const types = new Set(this.info.alts.flatMap((a) => (a.enum ? a.enum.map((v) => (v === null ? "null" : typeof v)) : [a.type])));
    if ((types.has("number") || types.has("integer")) && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
    if (types.has("boolean") && /^(true|false)$/i.test(t)) return t.toLowerCase() === "true";
    if (types.has("string")) return t;
    return this.parseJson(t);
  }

  parseJson(t) {
    try {
      return JSON.parse(t);
    } catch {
      return { __invalid: `${this.path.join(".")}: not valid JSON` };
    }
  }

  /** The value to send, or undefined when it is the default (or empty). */
  changed() {
    if (this.info.kind === "object") {
      const out = {};
      for (const c of this.children) {
        const v = c.changed();
        if (v !== undefined) out[c.name] = v;
      }
      return Object.keys(out).length ? out : undefined;
    }
    const v = this.read();
    if (v === undefined) return undefined;
    if (this.hasDefault && same(v, this.default)) return undefined;
    return v;
  }

  problems() {
    if (this.info.kind === "object") return this.children.flatMap((c) => c.problems());
    const v = this.read();
    const bad = v && typeof v === "object" && v.__invalid ? v.__invalid : this.check?.(v);
    this.showError(bad || null);
    return bad ? [bad] : [];
  }

  reset() {
    this.showError(null);
    if (this.info.kind === "object") this.children.forEach((c) => c.reset());
    else this.write(this.hasDefault ? this.default : undefined);
  }

  showError(message) {
    this.error.hidden = !message;
    this.error.textContent = message || "";
    const target = this.control || this.node;
    if (message) target.setAttribute("aria-invalid", "true");
    else target.removeAttribute("aria-invalid");
  }

  find(path) {
    if (!path.length || path[0] !== this.name) return null;
    if (path.length === 1 || !this.children.length) return this;
    for (const c of this.children) {
      const hit = c.find(path.slice(1));
      if (hit) return hit;
    }
    return this;
  }
}

/** The form for `schema` inside `container`; `skip` names fields rendered elsewhere (video_url). */
export function buildForm(container, doc, schema, { skip = [] } = {}) {
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties || {})
    .filter(([name]) => !skip.includes(name))
    .map(([name, sub]) => new Field(doc, name, [name], sub, required.has(name)));
  container.replaceChildren(...fields.map((f) => f.node));
  fields.forEach((f) => f.reset());
  return {
    fields,
    /** {body, problems}: the changed values, and what cannot be sent as typed. */
    collect() {
      const problems = fields.flatMap((f) => f.problems());
      const body = {};
      for (const f of fields) {
        const v = f.changed();
        if (v !== undefined) body[f.name] = v;
      }
      return { body, problems };
    },
    reset() {
      fields.forEach((f) => f.reset());
    },
    /** Marks the field a 422 `loc` points at; false when no field of this form matches. */
    markError(loc, message) {
      const path = loc.filter((p) => p !== "body").map(String);
      for (const f of fields) {
        const hit = f.find(path);
        if (hit) {
          hit.showError(message);
          return true;
        }
      }
      return false;
    },
    clearErrors() {
      const clear = (f) => { f.showError(null); f.children.forEach(clear); };
      fields.forEach(clear);
    },
  };
}
