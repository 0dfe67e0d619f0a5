// Built by scripts/build-dashboard.sh into BUILD_DIR/dashboard, which cloudcore serves at /ui/.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/ui/',
  build: {
    outDir: process.env.DASHBOARD_OUT || 'dist',
    emptyOutDir: true,
    target: 'es2020',
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
