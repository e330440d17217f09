// The typed client's one error: a gateway error body ({error:{code,message,details}})
// with the HTTP status it came with, so callers branch on `code`, never on text.
import { ERROR_STATUS } from "../core/errors.ts";

export class AirlockApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  /** Seconds from the `Retry-After` header (429 answers), when the gateway sent one. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    status: number,
    body: { code: string; message: string; details?: unknown },
    retryAfterSeconds?: number,
  ) {
    super(body.message);
    this.name = "AirlockApiError";
    this.status = status;
    this.code = body.code;
    this.details = body.details;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** The body as the gateway sent it. */
  toBody(): { error: { code: string; message: string; details?: unknown } } {
    const error: { code: string; message: string; details?: unknown } = {
      code: this.code,
      message: this.message,
    };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

function isErrorBody(value: unknown): value is { error: { code: string; message: string } } {
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === "string" && typeof error.message === "string";
}

/** Turns a non-2xx response into an AirlockApiError, whatever its body holds. */
export async function errorFromResponse(res: Response): Promise<AirlockApiError> {
  const text = await res.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const retry = Number(res.headers.get("retry-after") ?? Number.NaN);
  const retryAfter = Number.isFinite(retry) ? retry : undefined;
  if (isErrorBody(body)) return new AirlockApiError(res.status, body.error, retryAfter);
  return new AirlockApiError(
    res.status,
    {
      code: res.status >= 500 ? "internal" : "http_error",
      message: `HTTP ${res.status} ${res.statusText}${text === "" ? "" : `: ${text.slice(0, 200)}`}`,
    },
    retryAfter,
  );
}

/** An `error` event inside an event stream: no HTTP status of its own, so the code's. */
export function errorFromEvent(data: string): AirlockApiError {
  let body: unknown;
  try {
    body = JSON.parse(data);
  } catch {
    body = undefined;
  }
  if (!isErrorBody(body)) {
    return new AirlockApiError(500, { code: "internal", message: `bad error event: ${data}` });
  }
  const status = (ERROR_STATUS as Record<string, number>)[body.error.code] ?? 500;
  return new AirlockApiError(status, body.error);
}
