// Request validation for the routes declared with @hono/zod-openapi. The
// declarations' zod schemas check params, query and JSON bodies; this file makes
// every failure an invalid_request naming the field and what is wrong, as the
// documented error shape says, instead of the library's own 400/415 answers.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, Env, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import { AirlockError } from "../core/errors.ts";

/** The media types zod-openapi lets through to its JSON validator (its own test, kept in step). */
const JSON_TYPE = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

const mustBeJson = () =>
  new AirlockError("invalid_request", "the body must be JSON (Content-Type: application/json)");

interface Result {
  success: boolean;
  target: string;
  /** What was validated (the query's or path's parameters); @hono/zod-validator passes it. */
  data?: unknown;
  error?: z.ZodError;
}

/**
 * The defaultHook of every route app: a failed schema throws (app.onError answers), so
 * a bad body, query or parameter looks the same on every route.
 */
export function validationHook(result: Result): void {
  if (result.success || result.error === undefined) return;
  const issues = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join(".") : "(body)",
    message: issue.message,
  }));
  if (result.target === "json") {
    const first = issues[0];
    throw new AirlockError(
      "invalid_request",
      first === undefined ? "the body is invalid" : `${first.field}: ${first.message}`,
      { details: { issues } },
    );
  }
  const issue = result.error.issues[0];
  const where = result.target === "param" ? "path" : "query";
  const field = issue?.path.join(".") || `(${where})`;
  const value = (result.data as Record<string, unknown> | undefined)?.[field];
  throw new AirlockError(
    "invalid_request",
    issue !== undefined && issue.path.length > 0 && (value === undefined || value === "")
      ? `the ${where} parameter ${field} is required`
      : `${where} ${field}: ${issue?.message ?? "invalid"}`,
    { details: { field } },
  );
}

/** An app for a group of routes: declared with createRoute, validated by validationHook. */
export function routesApp<E extends Env>() {
  return new OpenAPIHono<E>({ defaultHook: validationHook });
}

/**
 * Route middleware for a required JSON body: the content type is checked here (the
 * library would answer 415 in its own shape) and the body read, so a body over the
 * size limit is a 413 and not a parse failure.
 */
export const jsonBody: MiddlewareHandler = async (c, next) => {
  if (!JSON_TYPE.test(c.req.header("content-type") ?? "")) throw mustBeJson();
  await c.req.text();
  await next();
};

/**
 * Route middleware for an optional JSON body: an empty one means {} whatever the
 * headers say (zod-openapi's rule is "no Content-Type", which a client sending an
 * empty JSON body breaks). With `anyType` a non-empty body is read as JSON whatever
 * its type, so a body sent as a form (curl -d) still counts: a stop meant for one
 * tenant must never become a stop of everything. The request the validator sees is
 * rewritten to say so; the body stays cached on c.req.
 */
export function optionalJsonBody(options: { anyType?: boolean } = {}): MiddlewareHandler {
  return async (c, next) => {
    const empty = (await c.req.text()).trim() === "";
    const type = c.req.header("content-type") ?? "";
    if (!empty && JSON_TYPE.test(type)) return next();
    if (!empty && options.anyType !== true) throw mustBeJson();
    const headers = new Headers(c.req.raw.headers);
    if (empty) headers.delete("content-type");
    else headers.set("content-type", "application/json");
    const { method, url, signal } = c.req.raw;
    c.req.raw = new Request(url, { method, headers, signal });
    return next();
  };
}

/**
 * The validators' own failure (the JSON validator throws "Malformed JSON" without
 * saying where): re-parsed from the cached body to name the problem, as before.
 */
export async function fromValidatorError(err: unknown, c: Context): Promise<AirlockError | null> {
  if (!(err instanceof HTTPException) || err.status !== 400) return null;
  try {
    JSON.parse(await c.req.text());
  } catch (cause) {
    if (cause instanceof AirlockError) return cause;
    return new AirlockError(
      "invalid_request",
      `the body is not valid JSON: ${(cause as Error).message}`,
      { cause },
    );
  }
  return new AirlockError("invalid_request", err.message, { cause: err });
}
