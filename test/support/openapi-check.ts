// Checks real responses against the gateway's own /openapi.json: a fetch that
// records each response, finds its operation and status in the document and
// validates a JSON body against the schema there (ajv, JSON Schema 2020-12).
import { Ajv2020 } from "ajv/dist/2020.js";

interface Doc {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>
  >;
}

export interface Checked {
  operation: string;
  status: number;
}

export function openApiChecker(doc: Doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(doc as object, "openapi");
  const templates = Object.keys(doc.paths).map((path) => ({
    path,
    pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`),
  }));
  const checked: Checked[] = [];
  const failures: string[] = [];

  async function check(method: string, url: string, res: Response): Promise<void> {
    const pathname = new URL(url).pathname;
    const template = templates.find((t) => t.pattern.test(pathname))?.path;
    const op = template === undefined ? undefined : doc.paths[template]?.[method.toLowerCase()];
    const operation = `${method.toUpperCase()} ${template ?? pathname}`;
    if (op === undefined) {
      failures.push(`${operation}: not in the document`);
      return;
    }
    const response = op.responses[String(res.status)];
    if (response === undefined) {
      failures.push(`${operation}: status ${res.status} not documented`);
      return;
    }
    checked.push({ operation, status: res.status });
    const type = (res.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
    if (res.status === 204 || res.status === 202) return;
    if (response.content?.[type] === undefined) {
      failures.push(`${operation} ${res.status}: content type ${type} not documented`);
      return;
    }
    if (type !== "application/json") return;
    const body: unknown = await res.clone().json();
    const pointer = [
      template as string,
      method.toLowerCase(),
      "responses",
      String(res.status),
      "content",
      type,
      "schema",
    ]
      .map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1"))
      .join("/");
    const validate = ajv.getSchema(`openapi#/paths/${pointer}`);
    if (validate === undefined) {
      failures.push(`${operation} ${res.status}: no schema`);
      return;
    }
    if (!validate(body)) {
      failures.push(
        `${operation} ${res.status}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body).slice(0, 300)}`,
      );
    }
  }

  return {
    checked,
    failures,
    /** A fetch for the typed client (or anything else) that checks every response. */
    fetch: async (req: Request): Promise<Response> => {
      const res = await fetch(req);
      await check(req.method, req.url, res);
      return res;
    },
    check,
  };
}
