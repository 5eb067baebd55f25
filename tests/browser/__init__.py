"""Browser tests: the real server and Debian's Chromium driven by Playwright."""
