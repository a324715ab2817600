"""Can this machine draw with OpenGL through EGL, as Blender's Workbench needs without a display? Asked in a child.

Blender does not raise when it finds no OpenGL: it aborts the whole process (exit 134, an assertion in libepoxy), so
the render node puts the question to a short-lived child process first. The child loads ``libEGL.so.1``, initialises
a surfaceless (else the default) display and makes a desktop OpenGL 4.3 core context current, as Blender's headless
start needs, and prints the OpenGL renderer (Mesa's llvmpipe on a node without a GPU) or the step that failed. It
takes about 0.1-0.2 s.

The usual EGL and Mesa environment variables act on the child as on Blender, e.g.
``__EGL_VENDOR_LIBRARY_FILENAMES=/nonexistent.json`` hides every EGL driver.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

PROBE_TIMEOUT_S = 30.0

_CHILD = r'''
import ctypes, json, sys

def done(ok, detail):
    print(json.dumps({"ok": ok, "detail": detail}))
    sys.exit(0)

try:
    egl = ctypes.CDLL("libEGL.so.1")
except OSError as exc:
    done(False, f"libEGL.so.1 cannot be loaded ({exc})")
P, I = ctypes.c_void_p, ctypes.c_int
for name, res, args in (("eglGetDisplay", P, [P]), ("eglInitialize", I, [P, P, P]), ("eglBindAPI", I, [I]),
                        ("eglChooseConfig", I, [P, P, P, I, P]), ("eglCreateContext", P, [P, P, P, P]),
                        ("eglCreatePbufferSurface", P, [P, P, P]), ("eglMakeCurrent", I, [P, P, P, P]),
                        ("eglGetError", I, []), ("eglGetProcAddress", P, [ctypes.c_char_p]),
                        ("eglTerminate", I, [P])):
    fn = getattr(egl, name)
    fn.restype, fn.argtypes = res, args

def error(step):
    done(False, f"{step} failed (EGL error 0x{egl.eglGetError():04x})")

def attribs(*pairs):
    return (I * (len(pairs) + 1))(*pairs, 0x3038)  # EGL_NONE

platform_display = ctypes.CFUNCTYPE(P, I, P, P)(egl.eglGetProcAddress(b"eglGetPlatformDisplayEXT") or 0)
tried = []
for name, platform in (("surfaceless", 0x31DD), ("default", None)):  # EGL_PLATFORM_SURFACELESS_MESA, then default
    if platform is None:
        dpy = egl.eglGetDisplay(None)
    else:
        dpy = platform_display(platform, None, None) if platform_display else None
    if dpy and egl.eglInitialize(dpy, None, None):
        break
    tried.append(f"{name} display: EGL error 0x{egl.eglGetError():04x}")
else:
    done(False, "no EGL display could be initialised (" + "; ".join(tried) + ")")
if not egl.eglBindAPI(0x30A2):  # EGL_OPENGL_API
    error("eglBindAPI(OpenGL)")
config, found = P(), I()
if not egl.eglChooseConfig(dpy, attribs(0x3033, 0x0001, 0x3040, 0x0008), ctypes.byref(config), 1,
                           ctypes.byref(found)) or not found.value:  # pbuffer surface, OpenGL renderable
    error("eglChooseConfig(OpenGL)")
ctx = egl.eglCreateContext(dpy, config, None, attribs(0x3098, 4, 0x30FB, 3, 0x30FD, 1))  # 4.3 core profile
if not ctx:
    error("eglCreateContext(OpenGL 4.3 core)")
if not egl.eglMakeCurrent(dpy, None, None, ctx):
    surface = egl.eglCreatePbufferSurface(dpy, config, attribs(0x3057, 1, 0x3056, 1))
    if not surface or not egl.eglMakeCurrent(dpy, surface, surface, ctx):
        error("eglMakeCurrent")
get_string = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_uint)(egl.eglGetProcAddress(b"glGetString"))
renderer = (get_string(0x1F01) or b"?").decode(errors="replace")
version = (get_string(0x1F02) or b"?").decode(errors="replace")
egl.eglTerminate(dpy)
done(True, f"{renderer}, OpenGL {version}")
'''


@dataclass(frozen=True)
class EglStatus:
    """Whether OpenGL through EGL starts here, with the OpenGL renderer (when it does) or the reason (when not)."""

    available: bool
    detail: str


def probe(timeout_s: float = PROBE_TIMEOUT_S) -> EglStatus:
    """Start an OpenGL 4.3 core context through EGL in a child process and report what happened (never raises)."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return EglStatus(False, f"the OpenGL probe did not answer within {timeout_s:g} s")
    except OSError as exc:
        return EglStatus(False, f"the OpenGL probe could not start ({exc})")
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
        return EglStatus(bool(answer["ok"]), str(answer["detail"]))
    except (IndexError, ValueError, KeyError, TypeError):
        tail = " | ".join((done.stderr or "").strip().splitlines()[-3:])
        return EglStatus(False, f"the OpenGL probe ended with exit code {done.returncode}"
                                + (f" ({tail})" if tail else ""))
