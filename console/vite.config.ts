import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The console's build: served by the API process (api/console-static.ts) under a strict CSP, so nothing
// may be inlined: no data: URIs for assets, no inline module preload script.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  logLevel: "warn",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
    sourcemap: false,
  },
});
