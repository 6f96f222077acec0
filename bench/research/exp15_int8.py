"""INT8 EfficientNet-Lite0 (ONNX Runtime static quantization, QDQ, per-channel) against fp32 on the
held-out sessions of grocery-produce, seven views, logistic regression C = 0.1 (README.md, "INT8").
Calibration on 32 magnetic-tile photos ("real", another domain) or on 32 synthetic images ("syn", what
the product ships). Needs the fp32 export in ~/.cache/visionloop/onnx and its pre-processed copy
/tmp/q/pre.onnx (onnxruntime.quantization.shape_inference.quant_pre_process)."""
import sys, os, time, glob, numpy as np, onnxruntime as ort
sys.path.insert(0,'/work/main'); sys.path.insert(0,'/work/main/bench/research')
os.environ.setdefault('RCACHE','/tmp/q/rc')
from concurrent.futures import ThreadPoolExecutor
from visionloop.engines.recipe import view_backbone, TILE_VIEWS, VIEWS
from visionloop.engines.preprocess import preprocess_views_batch
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantType, QuantFormat
from heldout_common import grocery, mf1
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
subset = sys.argv[1] if len(sys.argv)>1 else 'b20'
items, tr, te = grocery(subset)
idx = np.concatenate([tr, te])
views=[(view_backbone('efficientnet-lite0', v).spec.preprocessing, VIEWS[v].flip) for v in TILE_VIEWS]
pool=ThreadPoolExecutor(2)
src='/root/.cache/visionloop/onnx/efficientnet-lite0-579344248a93e230.x2.onnx'
def mk(p):
    o=ort.SessionOptions(); o.intra_op_num_threads=1; o.inter_op_num_threads=1
    return ort.InferenceSession(p,o,providers=['CPUExecutionProvider'])
# calibration sets
mag=sorted(glob.glob('/work/shared/datasets/magnetic-tile/**/*.jpg',recursive=True))[::40][:32]
calib_real=preprocess_views_batch([open(f,'rb').read() for f in mag], views[:1], pool)[0]
rng=np.random.default_rng(0)
def synth(n):
    # smooth random colour fields + edges, in the normalised range
    out=np.empty((n,3,224,224),np.float32)
    for i in range(n):
        low=rng.uniform(-1,1,(3,7,7)).astype(np.float32)
        up=np.kron(low,np.ones((32,32),np.float32))
        noise=rng.normal(0,0.2,(3,224,224)).astype(np.float32)
        out[i]=np.clip(up+noise,-1,1)
    return out
calib_syn=synth(32)
iname=mk(src).get_inputs()[0].name
def quant(name, data):
    path=f'/tmp/q/{name}.onnx'
    if not os.path.exists(path):
        class R(CalibrationDataReader):
            def __init__(s): s.it=iter([{iname: data[i:i+8]} for i in range(0,len(data),8)])
            def get_next(s): return next(s.it,None)
        quantize_static('/tmp/q/pre.onnx',path,R(),quant_format=QuantFormat.QDQ,per_channel=True,activation_type=QuantType.QUInt8,weight_type=QuantType.QInt8)
    return path
models={'fp32':src,'int8-real':quant('qreal',calib_real),'int8-syn':quant('qsyn',calib_syn)}
sess={k:mk(p) for k,p in models.items()}
feats={k:np.zeros((7,len(items),1280),np.float32) for k in models}
t=time.time()
for s in range(0,len(idx),32):
    ii=idx[s:s+32]
    arr=preprocess_views_batch([items[i][1].read_bytes() for i in ii], views, pool)
    for k,se in sess.items():
        for v in range(7):
            feats[k][v,ii]=se.run(None,{iname:arr[v]})[0]
print('embedded', time.time()-t, flush=True)
labs=sorted({items[i][0] for i in tr}); li={l:k for k,l in enumerate(labs)}
y=np.array([li.get(l,-1) for l,_ in items])
def evaluate(Ftr,Fte):
    X=np.concatenate([Ftr[v][tr] for v in range(7)]); Y=np.concatenate([y[tr]]*7)
    sc=StandardScaler().fit(X); m=LogisticRegression(C=0.1,max_iter=3000).fit(sc.transform(X),Y)
    lo=np.mean([m.decision_function(sc.transform(Fte[v][te])) for v in range(7)],0)
    return mf1(y[te], lo.argmax(1))
for k in models:
    print(subset, k, 'train+test', '%.3f'%evaluate(feats[k],feats[k]), flush=True)
for k in ('int8-real','int8-syn'):
    print(subset, 'train fp32, serve', k, '%.3f'%evaluate(feats['fp32'],feats[k]), flush=True)
