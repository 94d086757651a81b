// Test helper (`node --import tsx --import ./register.mjs …`): logs the URL of every module the
// process loads, one a line, to the file named by SUBNETLAB_TEST_LOAD_LOG — to see which modules an
// import pulls in (issue 13 item 4: importing the harness must not load binaryen).
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
