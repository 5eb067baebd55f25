/* The student page's classic script (student.js) still reads the shared helpers from a global `CM`: this module
 * gives it one, on that page only (base.html loads it when cm-config's page is "student"). Remove it, and its line in
 * base.html, once student.js is a module that imports common.js itself. */
import * as common from "./common.js";

window.CM = common;
