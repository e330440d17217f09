// Reads a JSON body and validates it with a zod schema. Malformed JSON and every
// schema failure become invalid_request naming the field and what is wrong.
import type { z } from "zod";
import { AirlockError } from "../core/errors.ts";

export async function parseBody<T extends z.ZodType>(req: Request, schema: T): Promise<z.infer<T>> {
  const type = req.headers.get("content-type") ?? "";
  if (!type.toLowerCase().includes("application/json")) {
    throw new AirlockError(
      "invalid_request",
      "the body must be JSON (Content-Type: application/json)",
    );
  }
  let raw: unknown;
  try {
    raw = await req.json();
  } catch (cause) {
    if (cause instanceof AirlockError) throw cause;
    throw new AirlockError(
      "invalid_request",
      `the body is not valid JSON: ${(cause as Error).message}`,
      { cause },
    );
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => ({
      field: issue.path.length > 0 ? issue.path.join(".") : "(body)",
      message: issue.message,
    }));
    const first = issues[0];
    throw new AirlockError(
      "invalid_request",
      first === undefined ? "the body is invalid" : `${first.field}: ${first.message}`,
      { details: { issues } },
    );
  }
  return result.data;
}
