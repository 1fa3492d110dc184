/* exporter.commands.parse._shapes: the zap info lines of no interest, recognised in one pass.
 * Optional: `parse` gives the same results without it, more slowly.
 *
 * undeleted(data, start, end, kubelet_shape, starts, ts_max, caller_max, msg_max, tail_max)
 * returns (lines, left, kept): the number of newlines in the block data[start:end], that is
 * `data.count(b"\n", start, end)`, counted in the same pass, the number of them in what is kept
 * (`kept.count(b"\n")`: lines less the deleted ones), and the block with every "\n<line>"
 * deleted whose line is deletable: exactly what `BLOCK_PATTERNS[0].strict` and then
 * `BLOCK_PATTERNS[1].strict` (see bulk.py) leave with `pattern.sub(b"", block)`,
 * on any input. A line (the bytes between two newlines, or between a newline and the end of the
 * block) is deletable iff it is
 *
 *     [prefix]{"level":"info","ts":"V","caller":"V","msg":"V"X}
 *
 * where the prefix (optional) has the shape `kubelet_shape` ('d' a digit, any other byte itself);
 * each V is a value of at most ts_max, caller_max or msg_max bytes, none of them '"' or '\\';
 * no byte string of `starts` begins where the msg value does (the messages of interest); X is at
 * most tail_max bytes; and the line may end in "\r" after the closing brace. Bytes before the
 * first newline are not a line and are kept. The limits, the prefix's shape and the starts come
 * from the caller (bulk.py), so the two cannot drift apart; tests compare them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    const char *shape; /* the kubelet prefix's shape */
    Py_ssize_t shape_len;
    PyObject **starts; /* bytes objects, borrowed from the caller's sequence */
    Py_ssize_t nstarts;
    unsigned char first[256]; /* 1 for a byte some start begins with */
    int empty_start;          /* a start of length 0: every msg is of interest */
    Py_ssize_t ts_max, caller_max, msg_max, tail_max;
} Shape;

#define LITERAL(p, e, text) literal((p), (e), (text), sizeof(text) - 1)

/* p + n when [p, e) begins with the n bytes of text, else NULL. */
static const char *literal(const char *p, const char *e, const char *text, size_t n)
{
    if (p == NULL || (size_t)(e - p) < n || memcmp(p, text, n) != 0)
        return NULL;
    return p + n;
}

/* A value at p: at most max bytes other than '"' and '\\', then '"'. The byte after the quote,
 * or NULL. The line [p, e) holds no newline. */
static const char *value(const char *p, const char *e, Py_ssize_t max)
{
    if (p == NULL)
        return NULL;
    Py_ssize_t room = e - p;
    if (room - 1 > max)
        room = max + 1; /* the quote is at most max bytes in */
    const char *quote = memchr(p, '"', (size_t)room);
    if (quote == NULL || memchr(p, '\\', (size_t)(quote - p)) != NULL)
        return NULL;
    return quote + 1;
}

/* Whether a start of interest begins at p. Like the pattern's lookahead, it may look past the
 * end of the line, up to the end of the block. */
static int interesting(const char *p, const char *block_end, const Shape *s)
{
    if (s->empty_start)
        return 1;
    if (p == block_end || !s->first[(unsigned char)*p])
        return 0;
    for (Py_ssize_t i = 0; i < s->nstarts; i++) {
        Py_ssize_t n = PyBytes_GET_SIZE(s->starts[i]);
        if (n <= block_end - p && memcmp(p, PyBytes_AS_STRING(s->starts[i]), (size_t)n) == 0)
            return 1;
    }
    return 0;
}

/* Whether [p, e) is a zap info line of no interest, without a prefix. */
static int zap_info(const char *p, const char *e, const char *block_end, const Shape *s)
{
    p = value(LITERAL(p, e, "{\"level\":\"info\",\"ts\":\""), e, s->ts_max);
    p = value(LITERAL(p, e, ",\"caller\":\""), e, s->caller_max);
    p = LITERAL(p, e, ",\"msg\":\"");
    if (p == NULL || interesting(p, block_end, s))
        return 0;
    p = value(p, e, s->msg_max);
    if (p == NULL)
        return 0;
    /* the rest: at most tail_max bytes, '}', and an optional '\r' */
    Py_ssize_t rest = e - p;
    if (rest >= 1 && e[-1] == '}')
        return rest - 1 <= s->tail_max;
    if (rest >= 2 && e[-1] == '\r' && e[-2] == '}')
        return rest - 2 <= s->tail_max;
    return 0;
}

/* Whether [p, e) begins with the kubelet prefix. */
static int prefixed(const char *p, const char *e, const Shape *s)
{
    if (e - p < s->shape_len)
        return 0;
    for (Py_ssize_t i = 0; i < s->shape_len; i++) {
        char c = s->shape[i];
        if (c == 'd' ? (unsigned char)(p[i] - '0') > 9 : p[i] != c)
            return 0;
    }
    return 1;
}

/* Whether the line [p, e) is deletable: with the prefix (BLOCK_PATTERNS[0]) or without ([1]). */
static int deletable(const char *p, const char *e, const char *block_end, const Shape *s)
{
    if (prefixed(p, e, s) && zap_info(p + s->shape_len, e, block_end, s))
        return 1;
    return zap_info(p, e, block_end, s);
}

/* A growing output buffer. */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Out;

static int append(Out *out, const char *p, Py_ssize_t n)
{
    if (n == 0)
        return 0;
    if (n > out->cap - out->len) {
        Py_ssize_t cap = out->cap > n ? 2 * out->cap : out->len + n + 4096;
        char *grown = PyMem_Realloc(out->data, (size_t)cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        out->data = grown;
        out->cap = cap;
    }
    memcpy(out->data + out->len, p, (size_t)n);
    out->len += n;
    return 0;
}

/* (lines, left, the block [p, end) without its deletable lines): the number of newlines in the
 * block and in what is kept, counted on the way, and what is kept. Kept lines are copied in
 * runs. */
static PyObject *scan(const char *p, const char *end, const Shape *s)
{
    Out out = {NULL, 0, 0};
    PyObject *result = NULL;
    Py_ssize_t lines = 0, deleted = 0;
    const char *run = p; /* start of the bytes kept but not yet copied */
    const char *newline = memchr(p, '\n', (size_t)(end - p));
    while (newline != NULL) {
        const char *line = newline + 1;
        const char *next = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = next ? next : end;
        lines++;
        if (deletable(line, line_end, end, s)) {
            deleted++;
            if (append(&out, run, newline - run) < 0)
                goto done;
            run = line_end;
        }
        newline = next;
    }
    if (append(&out, run, end - run) < 0)
        goto done;
    result = Py_BuildValue("(nny#)", lines, lines - deleted, out.data != NULL ? out.data : "",
                           out.len);
done:
    PyMem_Free(out.data);
    return result;
}

static PyObject *undeleted(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer data, shape;
    Py_ssize_t start, end;
    PyObject *starts_arg, *starts = NULL, *result = NULL;
    Shape s;
    if (!PyArg_ParseTuple(args, "y*nny*Onnnn:undeleted", &data, &start, &end, &shape, &starts_arg,
                          &s.ts_max, &s.caller_max, &s.msg_max, &s.tail_max))
        return NULL;
    if (start < 0 || start > end || end > data.len) {
        PyErr_SetString(PyExc_ValueError, "need 0 <= start <= end <= len(data)");
        goto done;
    }
    if (s.ts_max < 0 || s.caller_max < 0 || s.msg_max < 0 || s.tail_max < 0) {
        PyErr_SetString(PyExc_ValueError, "the longest lengths must not be negative");
        goto done;
    }
    starts = PySequence_Fast(starts_arg, "starts must be a sequence of bytes");
    if (starts == NULL)
        goto done;
    s.shape = shape.buf;
    s.shape_len = shape.len;
    s.starts = PySequence_Fast_ITEMS(starts);
    s.nstarts = PySequence_Fast_GET_SIZE(starts);
    s.empty_start = 0;
    memset(s.first, 0, sizeof(s.first));
    for (Py_ssize_t i = 0; i < s.nstarts; i++) {
        if (!PyBytes_Check(s.starts[i])) {
            PyErr_SetString(PyExc_TypeError, "starts must be a sequence of bytes");
            goto done;
        }
        if (PyBytes_GET_SIZE(s.starts[i]) == 0)
            s.empty_start = 1;
        else
            s.first[(unsigned char)PyBytes_AS_STRING(s.starts[i])[0]] = 1;
    }
    const char *base = data.buf;
    result = scan(base + start, base + end, &s);
done:
    Py_XDECREF(starts);
    PyBuffer_Release(&shape);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"undeleted", undeleted, METH_VARARGS,
     "undeleted(data, start, end, kubelet_shape, starts, ts_max, caller_max, msg_max, tail_max)"
     " -> (lines, left, bytes)\n\nThe number of newlines in the block data[start:end] and in"
     " what is kept, and the block without its zap info lines of no interest: what"
     " BLOCK_PATTERNS[0].strict and [1].strict (exporter.commands.parse.bulk) leave."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "exporter.commands.parse._shapes",
    "The zap info lines of no interest, recognised in one pass (see"
    " exporter.commands.parse.scanner).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__shapes(void)
{
    return PyModule_Create(&module);
}
