// Generated from the gateway's OpenAPI document (GET /openapi.json) by
// api/client-types.ts: do not edit. Regenerate: npx vitest run --project unit test/unit/openapi.test.ts -u

export interface paths {
  "/healthz": {
    /** The process answers */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              status: "ok";
            };
          };
        };
      };
    };
  };
  "/readyz": {
    /** Docker reachable, images present, hardening holds */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              status: "ready" | "not_ready";
              checks: Record<string, string>;
            };
          };
        };
        503: {
          content: {
            "application/json": {
              status: "ready" | "not_ready";
              checks: Record<string, string>;
            };
          };
        };
      };
    };
  };
  "/openapi.json": {
    /** This document */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            /** the document */
            "application/json": unknown;
          };
        };
      };
    };
  };
  "/docs": {
    /** The API reference for people */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            /** docs page */
            "text/html": string;
          };
        };
      };
    };
  };
  "/docs/scalar.js": {
    /** The docs page's script (Scalar's browser bundle, from the installed package) */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            /** the bundle */
            "text/javascript": string;
          };
        };
      };
    };
  };
  "/dashboard": {
    /** The operators' dashboard: a page that logs in with an admin key and polls the admin routes */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            /** dashboard page (holds no data itself) */
            "text/html": string;
          };
        };
      };
    };
  };
  "/v1/profiles": {
    /** The profiles a caller may use, with default and maximum limits */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              profiles: {
                name: string;
                description: string;
                image: string;
                runtime: string;
                network: string;
                languages: string[];
                defaultLanguage: string | null;
                limits: {
                  default: {
                    timeoutMs: number;
                    memoryMb: number;
                    cpus: number;
                    pids: number;
                    outputBytes: number;
                  };
                  max: {
                    timeoutMs: number;
                    memoryMb: number;
                    cpus: number;
                    pids: number;
                    outputBytes: number;
                  };
                };
                compileLimits?: {
                  default: {
                    timeoutMs: number;
                    memoryMb: number;
                  };
                  max: {
                    timeoutMs: number;
                    memoryMb: number;
                  };
                } | undefined;
                versions?: Record<string, string> | undefined;
              }[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/exec": {
    /** Run one operation in a throwaway container */
    post: {
      parameters: { query?: never; path?: never };
      requestBody: {
        content: {
          "application/json": {
            /** shell, python, node, … (GET /v1/profiles) */
            profile: string;
            /** argv array (argv[0] is a program on PATH, never a shell builtin), or a string run with /bin/sh -c; or give code instead */
            command?: string | string[] | undefined;
            /** source code, written to the profile's file for the language and run */
            code?: string | undefined;
            /** one of the profile's languages: with code, or alone when files holds the language's file (GET /v1/profiles) */
            language?: string | undefined;
            /** with code or language: appended to the language's run command */
            args?: string[] | undefined;
            /** a compiled language's compile stage: up to the profile's compileLimits maximum */
            compileLimits?: {
              timeoutMs?: number | undefined;
              memoryMb?: number | undefined;
            } | undefined;
            /** text on standard input */
            stdin?: string | undefined;
            /** extra environment variables */
            env?: Record<string, string> | undefined;
            /** files written to /workspace before the run */
            files?: {
              path: string;
              content: string;
              encoding?: "utf8" | "base64" | undefined;
              mode?: string | undefined;
            }[] | undefined;
            /** directory under /workspace to run in */
            workdir?: string | undefined;
            /** up to the profile's maximum (GET /v1/profiles) */
            limits?: {
              timeoutMs?: number | undefined;
              memoryMb?: number | undefined;
              cpus?: number | undefined;
              pids?: number | undefined;
              outputBytes?: number | undefined;
            } | undefined;
            /** globs: changed files that match come back in the result's files */
            returnFiles?: string[] | undefined;
            /** named egress networks of the policy file the key is granted; none: no network */
            networks?: string[] | undefined;
          };
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              id: string;
              status: "ok" | "error" | "timeout" | "oom" | "output_limit" | "workspace_full" | "compile_error";
              exitCode: number | null;
              signal: string | null;
              stdout: string;
              stderr: string;
              stdoutTruncated: boolean;
              stderrTruncated: boolean;
              durationMs: number;
              usage: {
                cpuMs: number | null;
                memoryPeakBytes: number | null;
              };
              diff: {
                added: {
                  path: string;
                  type: "file" | "symlink";
                  size: number;
                  sha256: string;
                  patch?: string | undefined;
                }[];
                modified: {
                  path: string;
                  type: "file" | "symlink";
                  size: number;
                  sha256: string;
                  patch?: string | undefined;
                }[];
                deleted: {
                  path: string;
                }[];
                truncated: boolean;
              };
              files: {
                path: string;
                encoding: "utf8" | "base64";
                content: string;
              }[];
              filesOmitted: string[];
              workspaceBytes?: number | undefined;
              egress?: {
                host: string;
                port: number;
                decision: "allowed" | "denied";
                reason?: string | undefined;
                network?: string | undefined;
                bytesOut: number;
                bytesIn: number;
              }[] | undefined;
              compile?: {
                status: "ok" | "error" | "timeout" | "oom";
                exitCode: number | null;
                stdout: string;
                stderr: string;
                durationMs: number;
              } | undefined;
              checkpoint?: {
                id: string;
              } | undefined;
            };
            /** With Accept: text/event-stream: `stdout` and `stderr` events (data: a JSON string, one chunk of output as written; id: its number in the execution, for Last-Event-ID on GET /v1/executions/{id}/events), then one `result` event (data: the ExecResult JSON), one `error` event (data: the error body) or one `end` event (data: {id, status}: cancelled). A client that disconnects leaves the job running. */
            "text/event-stream": string;
          };
        };
        202: {
          content: {
            "application/json": {
              /** the execution: GET /v1/executions/{id} (also the Location header) */
              id: string;
              /** queued → running → done (it ran: see result) | failed (a service fault: see error) | cancelled (DELETE, its client left, or an emergency stop) | lost (the gateway running it died) */
              status: "queued" | "running" | "done" | "failed" | "cancelled" | "lost";
            } | {
              approvalId: string;
              status: "pending" | "running" | "done" | "failed" | "denied" | "expired" | "cancelled";
              /** ISO time after which the approval lapses and the job never runs */
              expiresAt: string;
              /** the policy rules that asked for a human ("network", …) */
              reasons: string[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces": {
    /** Create a workspace (a volume that outlives each container) */
    post: {
      parameters: { query?: never; path?: never };
      requestBody?: {
        content: {
          "application/json": {
            profile?: string | undefined;
            files?: {
              path: string;
              content: string;
              encoding?: "utf8" | "base64" | undefined;
              mode?: string | undefined;
            }[] | undefined;
            /** egress networks (granted to the key) its jobs get unless they ask for others */
            networks?: string[] | undefined;
          };
        };
      };
      responses: {
        201: {
          content: {
            "application/json": {
              /** ws_ followed by 20 lower-case letters and digits */
              id: string;
              profile: string;
              /** ISO 8601 */
              createdAt: string;
              /** ISO 8601 */
              lastUsedAt: string;
              /** ISO 8601: idle workspaces are removed after their TTL */
              expiresAt: string;
              /** egress networks its jobs get unless they ask for others */
              networks?: string[] | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}": {
    /** A workspace's info */
    get: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              /** ws_ followed by 20 lower-case letters and digits */
              id: string;
              profile: string;
              /** ISO 8601 */
              createdAt: string;
              /** ISO 8601 */
              lastUsedAt: string;
              /** ISO 8601: idle workspaces are removed after their TTL */
              expiresAt: string;
              /** egress networks its jobs get unless they ask for others */
              networks?: string[] | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
    /** Remove a workspace and its volume */
    delete: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        204: {
          content?: never;
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/exec": {
    /** Run one operation against the workspace; the diff is against it before the call */
    post: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody: {
        content: {
          "application/json": {
            /** argv array (argv[0] is a program on PATH, never a shell builtin), or a string run with /bin/sh -c; or give code instead */
            command?: string | string[] | undefined;
            /** source code, written to the profile's file for the language and run */
            code?: string | undefined;
            /** one of the profile's languages: with code, or alone when files holds the language's file (GET /v1/profiles) */
            language?: string | undefined;
            /** with code or language: appended to the language's run command */
            args?: string[] | undefined;
            /** a compiled language's compile stage: up to the profile's compileLimits maximum */
            compileLimits?: {
              timeoutMs?: number | undefined;
              memoryMb?: number | undefined;
            } | undefined;
            /** text on standard input */
            stdin?: string | undefined;
            /** extra environment variables */
            env?: Record<string, string> | undefined;
            /** files written to /workspace before the run */
            files?: {
              path: string;
              content: string;
              encoding?: "utf8" | "base64" | undefined;
              mode?: string | undefined;
            }[] | undefined;
            /** directory under /workspace to run in */
            workdir?: string | undefined;
            /** up to the profile's maximum (GET /v1/profiles) */
            limits?: {
              timeoutMs?: number | undefined;
              memoryMb?: number | undefined;
              cpus?: number | undefined;
              pids?: number | undefined;
              outputBytes?: number | undefined;
            } | undefined;
            /** globs: changed files that match come back in the result's files */
            returnFiles?: string[] | undefined;
            /** named egress networks of the policy file the key is granted; none: no network */
            networks?: string[] | undefined;
            /** take a checkpoint before the run; the result's checkpoint.id undoes the step */
            checkpoint?: boolean | undefined;
          };
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              id: string;
              status: "ok" | "error" | "timeout" | "oom" | "output_limit" | "workspace_full" | "compile_error";
              exitCode: number | null;
              signal: string | null;
              stdout: string;
              stderr: string;
              stdoutTruncated: boolean;
              stderrTruncated: boolean;
              durationMs: number;
              usage: {
                cpuMs: number | null;
                memoryPeakBytes: number | null;
              };
              diff: {
                added: {
                  path: string;
                  type: "file" | "symlink";
                  size: number;
                  sha256: string;
                  patch?: string | undefined;
                }[];
                modified: {
                  path: string;
                  type: "file" | "symlink";
                  size: number;
                  sha256: string;
                  patch?: string | undefined;
                }[];
                deleted: {
                  path: string;
                }[];
                truncated: boolean;
              };
              files: {
                path: string;
                encoding: "utf8" | "base64";
                content: string;
              }[];
              filesOmitted: string[];
              workspaceBytes?: number | undefined;
              egress?: {
                host: string;
                port: number;
                decision: "allowed" | "denied";
                reason?: string | undefined;
                network?: string | undefined;
                bytesOut: number;
                bytesIn: number;
              }[] | undefined;
              compile?: {
                status: "ok" | "error" | "timeout" | "oom";
                exitCode: number | null;
                stdout: string;
                stderr: string;
                durationMs: number;
              } | undefined;
              checkpoint?: {
                id: string;
              } | undefined;
            };
            /** With Accept: text/event-stream: `stdout` and `stderr` events (data: a JSON string, one chunk of output as written; id: its number in the execution, for Last-Event-ID on GET /v1/executions/{id}/events), then one `result` event (data: the ExecResult JSON), one `error` event (data: the error body) or one `end` event (data: {id, status}: cancelled). A client that disconnects leaves the job running. */
            "text/event-stream": string;
          };
        };
        202: {
          content: {
            "application/json": {
              /** the execution: GET /v1/executions/{id} (also the Location header) */
              id: string;
              /** queued → running → done (it ran: see result) | failed (a service fault: see error) | cancelled (DELETE, its client left, or an emergency stop) | lost (the gateway running it died) */
              status: "queued" | "running" | "done" | "failed" | "cancelled" | "lost";
            } | {
              approvalId: string;
              status: "pending" | "running" | "done" | "failed" | "denied" | "expired" | "cancelled";
              /** ISO time after which the approval lapses and the job never runs */
              expiresAt: string;
              /** the policy rules that asked for a human ("network", …) */
              reasons: string[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/files": {
    /** Everything under a directory (default: all) */
    get: {
      parameters: { query?: {
          /** directory relative to /workspace (default: all) */
          path?: string | undefined;
        }; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              path: string;
              type: "file" | "directory" | "symlink" | "other";
              size: number;
              /** octal permission bits */
              mode: string;
              /** ISO 8601 */
              mtime: string;
              /** a symlink's target */
              target?: string | undefined;
            }[];
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
    /** Delete a file or directory */
    delete: {
      parameters: { query: {
          /** the file or directory, relative to /workspace */
          path: string;
        }; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        204: {
          content?: never;
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/files/content": {
    /** A file's bytes */
    get: {
      parameters: { query: {
          /** the file, relative to /workspace */
          path: string;
        }; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            /** the file */
            "application/octet-stream": string;
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
    /** Write a file (raw body) */
    put: {
      parameters: { query: {
          /** the file; parents are created, relative to /workspace */
          path: string;
        }; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody: {
        content: {
          /** the file's bytes */
          "application/octet-stream": string;
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              path: string;
              size: number;
              sha256: string;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/archive": {
    /** The whole workspace as a tar */
    get: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            /** /workspace */
            "application/x-tar": string;
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
    /** Replace the workspace's contents from a tar (checked entry by entry) */
    put: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody: {
        content: {
          /** a tar archive */
          "application/x-tar": string;
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              entries: number;
              bytes: number;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/checkpoints": {
    /** Take a checkpoint of the workspace as it is now */
    post: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: {
        content: {
          "application/json": {
            /** a name for the checkpoint, for the caller */
            label?: string | undefined;
          };
        };
      };
      responses: {
        201: {
          content: {
            "application/json": {
              /** cp_ followed by 20 lower-case letters and digits */
              id: string;
              label: string | null;
              /** ISO 8601 */
              createdAt: string;
              /** bytes of its regular files; counts against the tenant's checkpoint bytes */
              bytes: number;
              /** files, directories and symlinks */
              entries: number;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
    /** The workspace's checkpoints, oldest first */
    get: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              checkpoints: {
                /** cp_ followed by 20 lower-case letters and digits */
                id: string;
                label: string | null;
                /** ISO 8601 */
                createdAt: string;
                /** bytes of its regular files; counts against the tenant's checkpoint bytes */
                bytes: number;
                /** files, directories and symlinks */
                entries: number;
              }[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/checkpoints/{cp}": {
    /** Delete a checkpoint and its storage */
    delete: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
          /** the checkpoint id (cp_…) */
          cp: string;
        } };
      requestBody?: never;
      responses: {
        204: {
          content?: never;
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/restore": {
    /** Put the workspace back exactly as a checkpoint has it; answers with the diff it made */
    post: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody: {
        content: {
          "application/json": {
            /** the checkpoint to put back (cp_…) */
            checkpoint: string;
          };
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              checkpoint: string;
              /** what the restore changed: from the workspace before it to the checkpoint */
              diff: {
                added: {
                  path: string;
                  type: "file" | "symlink";
                  size: number;
                  sha256: string;
                  patch?: string | undefined;
                }[];
                modified: {
                  path: string;
                  type: "file" | "symlink";
                  size: number;
                  sha256: string;
                  patch?: string | undefined;
                }[];
                deleted: {
                  path: string;
                }[];
                truncated: boolean;
              };
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/fork": {
    /** New workspaces of the same tenant and profile, holding the workspace's (or a checkpoint's) files */
    post: {
      parameters: { query?: never; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: {
        content: {
          "application/json": {
            /** fork the checkpoint's state (default: the workspace as it is now) */
            checkpoint?: string | undefined;
            /** how many workspaces (default 1) */
            count?: number | undefined;
          };
        };
      };
      responses: {
        201: {
          content: {
            "application/json": {
              workspaces: {
                /** ws_ followed by 20 lower-case letters and digits */
                id: string;
                profile: string;
                /** ISO 8601 */
                createdAt: string;
                /** ISO 8601 */
                lastUsedAt: string;
                /** ISO 8601: idle workspaces are removed after their TTL */
                expiresAt: string;
                /** egress networks its jobs get unless they ask for others */
                networks?: string[] | undefined;
              }[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/workspaces/{id}/diff": {
    /** What changed from a checkpoint to another, or to the workspace now */
    get: {
      parameters: { query: {
          /** a checkpoint id */
          from: string;
          /** a checkpoint id, or current (the default) */
          to?: string | undefined;
        }; path: {
          /** the workspace id (ws_…) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              added: {
                path: string;
                type: "file" | "symlink";
                size: number;
                sha256: string;
                patch?: string | undefined;
              }[];
              modified: {
                path: string;
                type: "file" | "symlink";
                size: number;
                sha256: string;
                patch?: string | undefined;
              }[];
              deleted: {
                path: string;
              }[];
              truncated: boolean;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/executions/{id}": {
    /** An execution: its status, and its result once done; with wait, held until it ends */
    get: {
      parameters: { query?: {
          /** seconds (at most 60) to hold while it is queued or running */
          wait?: number | null | undefined;
        }; path: {
          /** the execution id (an exec result's id) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              /** the execution's id, also its result's id */
              id: string;
              /** queued → running → done (it ran: see result) | failed (a service fault: see error) | cancelled (DELETE, its client left, or an emergency stop) | lost (the gateway running it died) */
              status: "queued" | "running" | "done" | "failed" | "cancelled" | "lost";
              profile: string;
              /** set for a workspace exec */
              workspace?: string | undefined;
              /** ISO 8601 */
              createdAt: string;
              /** ISO 8601: when it left the queue for its sandbox */
              startedAt?: string | undefined;
              /** ISO 8601 */
              endedAt?: string | undefined;
              /** what ended it, when it did not run to a result */
              error?: {
                code: string;
                message: string;
                details?: unknown | undefined;
              } | undefined;
              /** output bytes kept for replay (GET …/events) */
              outputBytes: number;
              /** output bytes past the replay bound: streamed live, not kept */
              outputDroppedBytes: number;
              /** once done: the job's result, as its request answered */
              result?: {
                id: string;
                status: "ok" | "error" | "timeout" | "oom" | "output_limit" | "workspace_full" | "compile_error";
                exitCode: number | null;
                signal: string | null;
                stdout: string;
                stderr: string;
                stdoutTruncated: boolean;
                stderrTruncated: boolean;
                durationMs: number;
                usage: {
                  cpuMs: number | null;
                  memoryPeakBytes: number | null;
                };
                diff: {
                  added: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  modified: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  deleted: {
                    path: string;
                  }[];
                  truncated: boolean;
                };
                files: {
                  path: string;
                  encoding: "utf8" | "base64";
                  content: string;
                }[];
                filesOmitted: string[];
                workspaceBytes?: number | undefined;
                egress?: {
                  host: string;
                  port: number;
                  decision: "allowed" | "denied";
                  reason?: string | undefined;
                  network?: string | undefined;
                  bytesOut: number;
                  bytesIn: number;
                }[] | undefined;
                compile?: {
                  status: "ok" | "error" | "timeout" | "oom";
                  exitCode: number | null;
                  stdout: string;
                  stderr: string;
                  durationMs: number;
                } | undefined;
                checkpoint?: {
                  id: string;
                } | undefined;
              } | undefined;
              /** set when the result was too large to keep (then result is absent) */
              resultDroppedBytes?: number | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
    /** Cancel it: a queued job never starts, a running one is killed */
    delete: {
      parameters: { query?: never; path: {
          /** the execution id (an exec result's id) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              /** the execution's id, also its result's id */
              id: string;
              /** queued → running → done (it ran: see result) | failed (a service fault: see error) | cancelled (DELETE, its client left, or an emergency stop) | lost (the gateway running it died) */
              status: "queued" | "running" | "done" | "failed" | "cancelled" | "lost";
              profile: string;
              /** set for a workspace exec */
              workspace?: string | undefined;
              /** ISO 8601 */
              createdAt: string;
              /** ISO 8601: when it left the queue for its sandbox */
              startedAt?: string | undefined;
              /** ISO 8601 */
              endedAt?: string | undefined;
              /** what ended it, when it did not run to a result */
              error?: {
                code: string;
                message: string;
                details?: unknown | undefined;
              } | undefined;
              /** output bytes kept for replay (GET …/events) */
              outputBytes: number;
              /** output bytes past the replay bound: streamed live, not kept */
              outputDroppedBytes: number;
              /** once done: the job's result, as its request answered */
              result?: {
                id: string;
                status: "ok" | "error" | "timeout" | "oom" | "output_limit" | "workspace_full" | "compile_error";
                exitCode: number | null;
                signal: string | null;
                stdout: string;
                stderr: string;
                stdoutTruncated: boolean;
                stderrTruncated: boolean;
                durationMs: number;
                usage: {
                  cpuMs: number | null;
                  memoryPeakBytes: number | null;
                };
                diff: {
                  added: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  modified: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  deleted: {
                    path: string;
                  }[];
                  truncated: boolean;
                };
                files: {
                  path: string;
                  encoding: "utf8" | "base64";
                  content: string;
                }[];
                filesOmitted: string[];
                workspaceBytes?: number | undefined;
                egress?: {
                  host: string;
                  port: number;
                  decision: "allowed" | "denied";
                  reason?: string | undefined;
                  network?: string | undefined;
                  bytesOut: number;
                  bytesIn: number;
                }[] | undefined;
                compile?: {
                  status: "ok" | "error" | "timeout" | "oom";
                  exitCode: number | null;
                  stdout: string;
                  stderr: string;
                  durationMs: number;
                } | undefined;
                checkpoint?: {
                  id: string;
                } | undefined;
              } | undefined;
              /** set when the result was too large to keep (then result is absent) */
              resultDroppedBytes?: number | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        409: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/executions": {
    /** The caller's tenant's executions, newest first (without results) */
    get: {
      parameters: { query?: {
          /** only executions in this status */
          status?: "queued" | "running" | "done" | "failed" | "cancelled" | "lost" | undefined;
          /** only this workspace's executions */
          workspace?: string | undefined;
          /** at most this many (1-1000, default 50) */
          limit?: number | undefined;
        }; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              /** newest first, without results */
              executions: {
                /** the execution's id, also its result's id */
                id: string;
                /** queued → running → done (it ran: see result) | failed (a service fault: see error) | cancelled (DELETE, its client left, or an emergency stop) | lost (the gateway running it died) */
                status: "queued" | "running" | "done" | "failed" | "cancelled" | "lost";
                profile: string;
                /** set for a workspace exec */
                workspace?: string | undefined;
                /** ISO 8601 */
                createdAt: string;
                /** ISO 8601: when it left the queue for its sandbox */
                startedAt?: string | undefined;
                /** ISO 8601 */
                endedAt?: string | undefined;
                /** what ended it, when it did not run to a result */
                error?: {
                  code: string;
                  message: string;
                  details?: unknown | undefined;
                } | undefined;
                /** output bytes kept for replay (GET …/events) */
                outputBytes: number;
                /** output bytes past the replay bound: streamed live, not kept */
                outputDroppedBytes: number;
              }[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/executions/{id}/events": {
    /** Its output as Server-Sent Events: replayed from the start (or after Last-Event-ID), then live, then how it ended */
    get: {
      parameters: { query?: {
          /** false: send what is kept so far and end (with how it ended, if it has) */
          follow?: "true" | "false" | undefined;
        }; path: {
          /** the execution id (an exec result's id) */
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            /** `stdout` and `stderr` events (data: a JSON string; id: the event's number), a `dropped` event ({storedBytes, droppedBytes, message}) when output past the replay bound was not kept, then `result` (data: the ExecResult) when it is done, `error` (data: the error body) when it failed, or `end` (data: {id, status, error?}) when it was cancelled or lost. */
            "text/event-stream": string;
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/admin/egress/check": {
    /** Decide a connection on a named network without making it */
    post: {
      parameters: { query?: never; path?: never };
      requestBody: {
        content: {
          "application/json": {
            /** a network of the policy file */
            network: string;
            /** a name or an IP address */
            host: string;
            port: number;
            /** the address the name would be dialled at (default: its pin, or the host itself when it is an address) */
            address?: string | undefined;
          };
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              decision: "allowed" | "denied";
              reason: string;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/admin/stop": {
    /** The emergency stops in force */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              /** set while everything is stopped */
              all: {
                since: string;
              } | null;
              tenants: {
                tenant: string;
                since: string;
              }[];
              /** POST /v1/admin/stop: pending approvals the stop cancelled */
              cancelledApprovals?: number | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
    /** Emergency stop of one tenant or of everything: running jobs killed, queued ones cancelled, new requests 423 */
    post: {
      parameters: { query?: never; path?: never };
      requestBody?: {
        content: {
          /** a tenant, or nothing (an empty body) for everything */
          "application/json": {
            tenant?: string | undefined;
          };
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              /** set while everything is stopped */
              all: {
                since: string;
              } | null;
              tenants: {
                tenant: string;
                since: string;
              }[];
              /** POST /v1/admin/stop: pending approvals the stop cancelled */
              cancelledApprovals?: number | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/admin/resume": {
    /** Lift an emergency stop */
    post: {
      parameters: { query?: never; path?: never };
      requestBody?: {
        content: {
          /** a tenant, or nothing (an empty body) for everything */
          "application/json": {
            tenant?: string | undefined;
          };
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              /** set while everything is stopped */
              all: {
                since: string;
              } | null;
              tenants: {
                tenant: string;
                since: string;
              }[];
              /** POST /v1/admin/stop: pending approvals the stop cancelled */
              cancelledApprovals?: number | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/admin/policy/reload": {
    /** Re-read the policy file; a bad one keeps the old policy (400 with the reason) */
    post: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              ok: true;
              source: string;
              keys: number;
              tenants: number;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/admin/usage": {
    /** Each tenant's usage over the last hour, next to its quotas */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              tenants: {
                tenant: string;
                /** CPU-seconds used in the last hour */
                cpuSeconds: number;
                /** container-seconds used in the last hour */
                containerSeconds: number;
                /** jobs running now */
                running: number;
                /** the tenant's quotas from the policy; an absent one is unlimited */
                quotas: {
                  concurrentJobs?: number | undefined;
                  cpuSecondsPerHour?: number | undefined;
                  containerSecondsPerHour?: number | undefined;
                  maxJobSeconds?: number | undefined;
                  maxMemoryMb?: number | undefined;
                  maxCpus?: number | undefined;
                  maxWorkspaces?: number | undefined;
                  maxWorkspaceBytes?: number | undefined;
                };
              }[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/admin/jobs": {
    /** Running and queued jobs (this gateway's, then, with replicas, every other gateway's), with their age and limits, and this gateway's queue */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              /** this gateway's admitted jobs, oldest first; with replicas, then every other gateway's */
              jobs: {
                /** this gateway's handle of the admitted job */
                id: string;
                tenant: string;
                keyId: string;
                profile: string;
                workspace?: string | undefined;
                /** set when an approved job runs */
                approvalId?: string | undefined;
                /** queued: admitted, waiting for an executor slot or its workspace's lock */
                state: "queued" | "running";
                admittedAt: string;
                startedAt?: string | undefined;
                /** milliseconds since admission */
                ageMs: number;
                /** milliseconds since its container started */
                runningMs?: number | undefined;
                /** the container's airlock.job label, once running */
                jobId?: string | undefined;
                /** the instance id of the gateway it runs on (with replicas: jobs of other gateways, read from the shared store, have an empty keyId and limits.timeoutMs 0, which only their own gateway knows) */
                gateway?: string | undefined;
                /** the container's limits once running; before that the timeout the policy allows */
                limits: {
                  timeoutMs: number;
                  memoryMb?: number | undefined;
                  cpus?: number | undefined;
                  pids?: number | undefined;
                  outputBytes?: number | undefined;
                };
              }[];
              queue: {
                /** sandboxes running now, internal workspace file operations included */
                running: number;
                /** jobs waiting for an executor slot */
                waiting: number;
                /** admitted jobs of each tenant not yet in a sandbox */
                queuedByTenant: Record<string, number>;
              };
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/audit": {
    /** The audit trail, newest first */
    get: {
      parameters: { query?: {
          /** only this tenant */
          tenant?: string | undefined;
          /** only records that needed this scope */
          scope?: string | undefined;
          /** a result status or an error code */
          status?: string | undefined;
          /** the operation, e.g. exec or files.read */
          op?: string | undefined;
          /** ISO time or epoch ms */
          since?: string | undefined;
          /** at most this many (1-10000, default 100) */
          limit?: number | undefined;
        }; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              records: {
                time: string;
                requestId: string | null;
                op: string;
                method: string;
                path: string;
                tenant: string | null;
                keyId: string | null;
                scope: string | null;
                profile: string | null;
                workspace: string | null;
                commandDigest: string | null;
                status: string;
                httpStatus: number;
                exitCode: number | null;
                durationMs: number;
                bytesIn: number | null;
                bytesOut: number | null;
                approvalId: string | null;
                egress?: {
                  allowed: number;
                  denied: number;
                  bytesOut: number;
                  bytesIn: number;
                } | undefined;
              }[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/approvals": {
    /** Pending approvals */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              approvals: {
                id: string;
                status: "pending" | "running" | "done" | "failed" | "denied" | "expired" | "cancelled";
                tenant: string;
                keyId: string;
                profile: string;
                reasons: string[];
                /** sha256 of the command: never the command itself */
                commandDigest: string;
                timeoutMs: number;
                workspace?: string | undefined;
                /** the scopes the held job needed: a key of its tenant reads the approval with them */
                scopes: string[];
                createdAt: string;
                expiresAt: string;
                decidedAt?: string | undefined;
                /** the key id of the admin who decided */
                decidedBy?: string | undefined;
                /** once approved and run: the job's result */
                result?: {
                  id: string;
                  status: "ok" | "error" | "timeout" | "oom" | "output_limit" | "workspace_full" | "compile_error";
                  exitCode: number | null;
                  signal: string | null;
                  stdout: string;
                  stderr: string;
                  stdoutTruncated: boolean;
                  stderrTruncated: boolean;
                  durationMs: number;
                  usage: {
                    cpuMs: number | null;
                    memoryPeakBytes: number | null;
                  };
                  diff: {
                    added: {
                      path: string;
                      type: "file" | "symlink";
                      size: number;
                      sha256: string;
                      patch?: string | undefined;
                    }[];
                    modified: {
                      path: string;
                      type: "file" | "symlink";
                      size: number;
                      sha256: string;
                      patch?: string | undefined;
                    }[];
                    deleted: {
                      path: string;
                    }[];
                    truncated: boolean;
                  };
                  files: {
                    path: string;
                    encoding: "utf8" | "base64";
                    content: string;
                  }[];
                  filesOmitted: string[];
                  workspaceBytes?: number | undefined;
                  egress?: {
                    host: string;
                    port: number;
                    decision: "allowed" | "denied";
                    reason?: string | undefined;
                    network?: string | undefined;
                    bytesOut: number;
                    bytesIn: number;
                  }[] | undefined;
                  compile?: {
                    status: "ok" | "error" | "timeout" | "oom";
                    exitCode: number | null;
                    stdout: string;
                    stderr: string;
                    durationMs: number;
                  } | undefined;
                  checkpoint?: {
                    id: string;
                  } | undefined;
                } | undefined;
                error?: {
                  code: string;
                  message: string;
                } | undefined;
              }[];
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/approvals/{id}": {
    /** An approval (a key of the requesting tenant with the held job's scopes, or an admin; counted against the key's rate limit); with wait, held until it changes */
    get: {
      parameters: { query?: {
          /** seconds (at most 60) to wait while it is pending or running */
          wait?: number | null | undefined;
        }; path: {
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              id: string;
              status: "pending" | "running" | "done" | "failed" | "denied" | "expired" | "cancelled";
              tenant: string;
              keyId: string;
              profile: string;
              reasons: string[];
              /** sha256 of the command: never the command itself */
              commandDigest: string;
              timeoutMs: number;
              workspace?: string | undefined;
              /** the scopes the held job needed: a key of its tenant reads the approval with them */
              scopes: string[];
              createdAt: string;
              expiresAt: string;
              decidedAt?: string | undefined;
              /** the key id of the admin who decided */
              decidedBy?: string | undefined;
              /** once approved and run: the job's result */
              result?: {
                id: string;
                status: "ok" | "error" | "timeout" | "oom" | "output_limit" | "workspace_full" | "compile_error";
                exitCode: number | null;
                signal: string | null;
                stdout: string;
                stderr: string;
                stdoutTruncated: boolean;
                stderrTruncated: boolean;
                durationMs: number;
                usage: {
                  cpuMs: number | null;
                  memoryPeakBytes: number | null;
                };
                diff: {
                  added: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  modified: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  deleted: {
                    path: string;
                  }[];
                  truncated: boolean;
                };
                files: {
                  path: string;
                  encoding: "utf8" | "base64";
                  content: string;
                }[];
                filesOmitted: string[];
                workspaceBytes?: number | undefined;
                egress?: {
                  host: string;
                  port: number;
                  decision: "allowed" | "denied";
                  reason?: string | undefined;
                  network?: string | undefined;
                  bytesOut: number;
                  bytesIn: number;
                }[] | undefined;
                compile?: {
                  status: "ok" | "error" | "timeout" | "oom";
                  exitCode: number | null;
                  stdout: string;
                  stderr: string;
                  durationMs: number;
                } | undefined;
                checkpoint?: {
                  id: string;
                } | undefined;
              } | undefined;
              error?: {
                code: string;
                message: string;
              } | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/approvals/{id}/approve": {
    /** Approve: the job runs, exactly once */
    post: {
      parameters: { query?: never; path: {
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              id: string;
              status: "pending" | "running" | "done" | "failed" | "denied" | "expired" | "cancelled";
              tenant: string;
              keyId: string;
              profile: string;
              reasons: string[];
              /** sha256 of the command: never the command itself */
              commandDigest: string;
              timeoutMs: number;
              workspace?: string | undefined;
              /** the scopes the held job needed: a key of its tenant reads the approval with them */
              scopes: string[];
              createdAt: string;
              expiresAt: string;
              decidedAt?: string | undefined;
              /** the key id of the admin who decided */
              decidedBy?: string | undefined;
              /** once approved and run: the job's result */
              result?: {
                id: string;
                status: "ok" | "error" | "timeout" | "oom" | "output_limit" | "workspace_full" | "compile_error";
                exitCode: number | null;
                signal: string | null;
                stdout: string;
                stderr: string;
                stdoutTruncated: boolean;
                stderrTruncated: boolean;
                durationMs: number;
                usage: {
                  cpuMs: number | null;
                  memoryPeakBytes: number | null;
                };
                diff: {
                  added: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  modified: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  deleted: {
                    path: string;
                  }[];
                  truncated: boolean;
                };
                files: {
                  path: string;
                  encoding: "utf8" | "base64";
                  content: string;
                }[];
                filesOmitted: string[];
                workspaceBytes?: number | undefined;
                egress?: {
                  host: string;
                  port: number;
                  decision: "allowed" | "denied";
                  reason?: string | undefined;
                  network?: string | undefined;
                  bytesOut: number;
                  bytesIn: number;
                }[] | undefined;
                compile?: {
                  status: "ok" | "error" | "timeout" | "oom";
                  exitCode: number | null;
                  stdout: string;
                  stderr: string;
                  durationMs: number;
                } | undefined;
                checkpoint?: {
                  id: string;
                } | undefined;
              } | undefined;
              error?: {
                code: string;
                message: string;
              } | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/v1/approvals/{id}/deny": {
    /** Deny: the job never runs */
    post: {
      parameters: { query?: never; path: {
          id: string;
        } };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              id: string;
              status: "pending" | "running" | "done" | "failed" | "denied" | "expired" | "cancelled";
              tenant: string;
              keyId: string;
              profile: string;
              reasons: string[];
              /** sha256 of the command: never the command itself */
              commandDigest: string;
              timeoutMs: number;
              workspace?: string | undefined;
              /** the scopes the held job needed: a key of its tenant reads the approval with them */
              scopes: string[];
              createdAt: string;
              expiresAt: string;
              decidedAt?: string | undefined;
              /** the key id of the admin who decided */
              decidedBy?: string | undefined;
              /** once approved and run: the job's result */
              result?: {
                id: string;
                status: "ok" | "error" | "timeout" | "oom" | "output_limit" | "workspace_full" | "compile_error";
                exitCode: number | null;
                signal: string | null;
                stdout: string;
                stderr: string;
                stdoutTruncated: boolean;
                stderrTruncated: boolean;
                durationMs: number;
                usage: {
                  cpuMs: number | null;
                  memoryPeakBytes: number | null;
                };
                diff: {
                  added: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  modified: {
                    path: string;
                    type: "file" | "symlink";
                    size: number;
                    sha256: string;
                    patch?: string | undefined;
                  }[];
                  deleted: {
                    path: string;
                  }[];
                  truncated: boolean;
                };
                files: {
                  path: string;
                  encoding: "utf8" | "base64";
                  content: string;
                }[];
                filesOmitted: string[];
                workspaceBytes?: number | undefined;
                egress?: {
                  host: string;
                  port: number;
                  decision: "allowed" | "denied";
                  reason?: string | undefined;
                  network?: string | undefined;
                  bytesOut: number;
                  bytesIn: number;
                }[] | undefined;
                compile?: {
                  status: "ok" | "error" | "timeout" | "oom";
                  exitCode: number | null;
                  stdout: string;
                  stderr: string;
                  durationMs: number;
                } | undefined;
                checkpoint?: {
                  id: string;
                } | undefined;
              } | undefined;
              error?: {
                code: string;
                message: string;
              } | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        404: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        422: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
  "/mcp": {
    /** Model Context Protocol, Streamable HTTP (stateless): JSON-RPC messages */
    post: {
      parameters: { query?: never; path?: never };
      requestBody: {
        content: {
          /** a JSON-RPC request or batch */
          "application/json": unknown;
        };
      };
      responses: {
        200: {
          content: {
            /** JSON-RPC */
            "application/json": unknown;
            /** JSON-RPC messages as `message` events */
            "text/event-stream": string;
          };
        };
        202: {
          content?: never;
        };
        400: {
          content: {
            "application/json": {
              jsonrpc: "2.0";
              error: {
                code: number;
                message: string;
                data?: unknown | undefined;
              };
              id: string | number | null;
            };
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        406: {
          content: {
            "application/json": {
              jsonrpc: "2.0";
              error: {
                code: number;
                message: string;
                data?: unknown | undefined;
              };
              id: string | number | null;
            };
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        415: {
          content: {
            "application/json": {
              jsonrpc: "2.0";
              error: {
                code: number;
                message: string;
                data?: unknown | undefined;
              };
              id: string | number | null;
            };
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
    /** Not offered: the MCP endpoint is stateless, with no server-initiated stream */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        405: {
          content: {
            "application/json": {
              jsonrpc: "2.0";
              error: {
                code: number;
                message: string;
                data?: unknown | undefined;
              };
              id: string | number | null;
            };
          };
        };
      };
    };
    /** Not offered: there are no sessions to end */
    delete: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        405: {
          content: {
            "application/json": {
              jsonrpc: "2.0";
              error: {
                code: number;
                message: string;
                data?: unknown | undefined;
              };
              id: string | number | null;
            };
          };
        };
      };
    };
  };
  "/api/v2/runtimes": {
    /** Piston-compatible: the languages and versions this gateway runs */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            "application/json": {
              language: string;
              version: string;
              aliases: string[];
              runtime?: string | undefined;
            }[];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
      };
    };
  };
  "/api/v2/execute": {
    /** Piston-compatible execute */
    post: {
      parameters: { query?: never; path?: never };
      requestBody: {
        content: {
          "application/json": {
            language: string;
            /** a semver range: 3, 3.11, *, or an exact version */
            version: string;
            /** the first file is run; the others sit beside it */
            files: {
              name?: string | undefined;
              content: string;
              encoding?: "utf8" | "base64" | "hex" | undefined;
            }[];
            stdin?: string | undefined;
            /** appended to the command */
            args?: string[] | undefined;
            /** ms, up to the profile's maximum timeoutMs */
            run_timeout?: number | undefined;
            /** ms, up to the profile's compileLimits maximum timeoutMs */
            compile_timeout?: number | undefined;
            /** bytes; -1 or absent: the profile default */
            run_memory_limit?: number | undefined;
            /** bytes; -1 or absent: the profile's compile default */
            compile_memory_limit?: number | undefined;
            /** ignored: the wall-clock run_timeout applies */
            run_cpu_time?: number | undefined;
            /** ignored */
            compile_cpu_time?: number | undefined;
          };
        };
      };
      responses: {
        200: {
          content: {
            "application/json": {
              language: string;
              version: string;
              compile?: {
                stdout: string;
                stderr: string;
                /** stdout and stderr interleaved as they were written */
                output: string;
                code: number | null;
                signal: string | null;
                /** null: exited 0; RE: non-zero exit; SG: killed by a signal; TO: time limit; OL/EL: stdout/stderr too long */
                status: "RE" | "SG" | "TO" | "OL" | "EL" | "XX" | null;
                message: string | null;
                /** peak bytes */
                memory: number | null;
                /** ms */
                cpu_time: number | null;
                /** ms */
                wall_time: number | null;
              } | undefined;
              run?: {
                stdout: string;
                stderr: string;
                /** stdout and stderr interleaved as they were written */
                output: string;
                code: number | null;
                signal: string | null;
                /** null: exited 0; RE: non-zero exit; SG: killed by a signal; TO: time limit; OL/EL: stdout/stderr too long */
                status: "RE" | "SG" | "TO" | "OL" | "EL" | "XX" | null;
                message: string | null;
                /** peak bytes */
                memory: number | null;
                /** ms */
                cpu_time: number | null;
                /** ms */
                wall_time: number | null;
              } | undefined;
            };
          };
        };
        400: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        403: {
          content: {
            "application/json": components["schemas"]["PistonApprovalPending"] | components["schemas"]["PistonError"];
          };
        };
        413: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        423: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        429: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
        503: {
          content: {
            "application/json": components["schemas"]["PistonError"];
          };
        };
      };
    };
  };
  "/metrics": {
    /** Prometheus metrics: jobs, queue, containers, request and error counts */
    get: {
      parameters: { query?: never; path?: never };
      requestBody?: never;
      responses: {
        200: {
          content: {
            /** metrics */
            "text/plain": string;
          };
        };
        401: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
        500: {
          content: {
            "application/json": components["schemas"]["ErrorBody"];
          };
        };
      };
    };
  };
}

export interface components {
  schemas: {
    ErrorBody: {
      error: {
        code: string;
        message: string;
        details?: unknown | undefined;
      };
    };
    PistonError: {
      message: string;
    };
    PistonApprovalPending: {
      message: string;
      /** wait on it with GET /v1/approvals/{approvalId}?wait= (same key) */
      approvalId: string;
      status: "pending";
      expiresAt: string;
      reasons: string[];
    };
  };
}
