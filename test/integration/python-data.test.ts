// The python-data profile against a real engine: numpy, pandas and scipy work
// offline, matplotlib draws with Agg, and a chart saved as a file comes back
// through returnFiles, and through MCP's exec as image content a model can see.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const PNG_MAGIC = "89504e470d0a1a0a";

const CHART = `
import numpy as np, pandas as pd, scipy.stats as st
import matplotlib.pyplot as plt
df = pd.DataFrame({"x": np.arange(10), "y": np.arange(10) ** 2})
print(df["y"].sum(), round(st.norm.cdf(0), 2), plt.get_backend())
df.plot(x="x", y="y")
plt.savefig("chart.png")
plt.savefig("chart.jpg")
`;

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2 });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

describe("python-data", () => {
  it("computes with numpy, pandas and scipy and returns a matplotlib chart", async () => {
    const res = await gw.post("/v1/exec", {
      profile: "python-data",
      code: CHART,
      returnFiles: ["*.png"],
      limits: { timeoutMs: 60_000 },
    });
    const r = (await res.json()) as ExecResult;
    expect(r.stderr).toBe("");
    expect(r).toMatchObject({ status: "ok", stdout: "285 0.5 agg\n" });
    expect(r.diff.added.map((f) => f.path).sort()).toEqual(["chart.jpg", "chart.png"]);
    const png = r.files.find((f) => f.path === "chart.png");
    expect(png?.encoding).toBe("base64");
    expect(
      Buffer.from(png?.content ?? "", "base64")
        .subarray(0, 8)
        .toString("hex"),
    ).toBe(PNG_MAGIC);
  });

  it("shows the chart to a model: MCP exec answers PNG and JPEG files as image content", async () => {
    const client = new Client({ name: "airlock-integration", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${gw.key}` } },
      }),
    );
    try {
      const r = await client.callTool(
        {
          name: "exec",
          arguments: {
            profile: "python-data",
            code: CHART,
            returnFiles: ["chart.*"],
            limits: { timeoutMs: 60_000 },
          },
        },
        undefined,
        { timeout: 120_000 },
      );
      const images = (r.content as { type: string; mimeType?: string; data?: string }[]).filter(
        (c) => c.type === "image",
      );
      expect(images.map((i) => i.mimeType).sort()).toEqual(["image/jpeg", "image/png"]);
      const png = images.find((i) => i.mimeType === "image/png");
      expect(
        Buffer.from(png?.data ?? "", "base64")
          .subarray(0, 8)
          .toString("hex"),
      ).toBe(PNG_MAGIC);
    } finally {
      await client.close();
    }
  });
});
