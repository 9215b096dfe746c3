import { defineConfig } from "vite";

/**
 * The browser console. `npm run build:console` writes console/dist, which `npm start` serves at
 * `/` and wrangler.toml uploads as the Worker's static assets. `npm run dev:console` serves it
 * with hot reload and sends the API calls to `npm start` on :3000.
 */
export default defineConfig({
  root: import.meta.dirname,
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  server: {
    proxy: { "/v1": { target: "http://localhost:3000", ws: true } },
  },
});
