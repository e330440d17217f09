// Writes the typed client's view of the API (client/openapi-types.ts) from the
// gateway's own OpenAPI document: every path and method with its parameters, its
// request body and each response's content, as TypeScript types. The layout is
// openapi-typescript's (`paths[path][method]`), so client/http.ts reads either.
// test/unit/openapi.test.ts regenerates it from the live app and fails on drift.
//
// Written here rather than taken from openapi-typescript because the document uses
// a small part of JSON Schema (zod's output) and because the client's callers pass
// zod-parsed objects: an optional property is `?: T | undefined`, which
// exactOptionalPropertyTypes needs and openapi-typescript does not emit.

type Schema = { [key: string]: unknown };
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
};
type Operation = {
  summary?: string;
  parameters?: { name: string; in: string; required?: boolean; schema?: Schema }[];
  requestBody?: { required?: boolean; content: Record<string, { schema?: Schema }> };
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
};

export const CLIENT_TYPES_FILE = "client/openapi-types.ts";
export const REGENERATE = "npx vitest run --project unit test/unit/openapi.test.ts -u";

const HEADER = `// Generated from the gateway's OpenAPI document (GET /openapi.json) by
// api/client-types.ts: do not edit. Regenerate: ${REGENERATE}
`;

const key = (name: string) =>
  /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);

function doc(text: unknown, pad: string): string {
  return typeof text === "string" && text !== ""
    ? `${pad}/** ${text.replaceAll("*/", "*\\/").replaceAll("\n", " ")} */\n`
    : "";
}

/** `{ a: T; b?: U | undefined }`, one property a line. */
function objectType(fields: [string, Schema | undefined, boolean][], pad: string): string {
  if (fields.length === 0) return "Record<string, never>";
  const inner = `${pad}  `;
  const lines = fields.map(([name, schema, required]) => {
    const type = typeOf(schema, inner);
    return `${doc(schema?.["description"], inner)}${inner}${key(name)}${required ? `: ${type}` : `?: ${type} | undefined`};`;
  });
  return `{\n${lines.join("\n")}\n${pad}}`;
}

const parens = (type: string) => (/[|&]/.test(type) && !type.startsWith("{") ? `(${type})` : type);

/** A JSON Schema (the subset zod and zod-to-openapi write) as a TypeScript type. */
export function typeOf(schema: Schema | undefined, pad = ""): string {
  if (schema === undefined) return "unknown";
  const ref = schema["$ref"];
  if (typeof ref === "string") {
    return `components["schemas"][${JSON.stringify(ref.replace("#/components/schemas/", ""))}]`;
  }
  if ("const" in schema) return JSON.stringify(schema["const"]);
  if (Array.isArray(schema["enum"]))
    return schema["enum"].map((v) => JSON.stringify(v)).join(" | ");
  for (const [word, joint] of [
    ["anyOf", " | "],
    ["oneOf", " | "],
    ["allOf", " & "],
  ] as const) {
    const parts = schema[word];
    if (Array.isArray(parts)) return parts.map((s) => parens(typeOf(s as Schema, pad))).join(joint);
  }
  const type = schema["type"];
  if (Array.isArray(type)) return type.map((t) => typeOf({ ...schema, type: t }, pad)).join(" | ");
  switch (type) {
    case "string":
    case "number":
    case "boolean":
    case "null":
      return type;
    case "integer":
      return "number";
    case "array":
      return `${parens(typeOf(schema["items"] as Schema | undefined, pad))}[]`;
  }
  const properties = schema["properties"] as Record<string, Schema> | undefined;
  const extra = schema["additionalProperties"];
  if (properties === undefined && type === "object") {
    return `Record<string, ${extra === false ? "never" : typeOf(extra === true ? undefined : (extra as Schema), pad)}>`;
  }
  if (properties === undefined) return "unknown";
  const required = new Set((schema["required"] as string[] | undefined) ?? []);
  return objectType(
    Object.entries(properties).map(([name, s]) => [name, s, required.has(name)]),
    pad,
  );
}

function contentType(content: Record<string, { schema?: Schema }> | undefined, pad: string) {
  if (content === undefined) return "content?: never";
  return `content: ${objectType(
    Object.entries(content).map(([type, media]) => [type, media.schema, true]),
    pad,
  )}`;
}

function operationType(op: Operation, pad: string): string {
  const inner = `${pad}  `;
  const params = (where: string) => {
    const list = (op.parameters ?? []).filter((p) => p.in === where);
    if (list.length === 0) return `${where}?: never`;
    const fields = list.map((p): [string, Schema | undefined, boolean] => [
      p.name,
      p.schema,
      p.required === true,
    ]);
    return `${where}${list.some((p) => p.required) ? "" : "?"}: ${objectType(fields, `${inner}  `)}`;
  };
  const body = op.requestBody;
  const block = (name: string, content: Operation["responses"][string]["content"], pad: string) =>
    `${pad}${name}: {\n${pad}  ${contentType(content, `${pad}  `)};\n${pad}};`;
  const responses = Object.entries(op.responses).map(([status, r]) =>
    block(status, r.content, `${inner}  `),
  );
  return [
    "{",
    `${inner}parameters: { ${params("query")}; ${params("path")} };`,
    body === undefined
      ? `${inner}requestBody?: never;`
      : block(`requestBody${body.required ? "" : "?"}`, body.content, inner),
    `${inner}responses: {`,
    ...responses,
    `${inner}};`,
    `${pad}}`,
  ].join("\n");
}

/** The source of client/openapi-types.ts for a document. */
export function clientTypes(document: Document): string {
  const paths = Object.entries(document.paths).map(([path, methods]) => {
    const ops = Object.entries(methods).map(
      ([method, op]) => `${doc(op.summary, "    ")}    ${method}: ${operationType(op, "    ")};`,
    );
    return `  ${JSON.stringify(path)}: {\n${ops.join("\n")}\n  };`;
  });
  const schemas = Object.entries(document.components?.schemas ?? {}).map(
    ([name, schema]) => `    ${key(name)}: ${typeOf(schema, "    ")};`,
  );
  return `${HEADER}
export interface paths {
${paths.join("\n")}
}

export interface components {
  schemas: {
${schemas.join("\n")}
  };
}
`;
}
