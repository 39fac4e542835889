// Bundles src/index.js into ../deltakit_nb/static/chat.js, the file the server extension serves.
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const options = {
  entryPoints: [fileURLToPath(new URL("./src/index.js", import.meta.url))],
  outfile: fileURLToPath(new URL("../deltakit_nb/static/chat.js", import.meta.url)),
  bundle: true,
  format: "esm",
  target: ["es2021"],
  minify: true,
  legalComments: "eof",
  loader: { ".css": "text" },
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
