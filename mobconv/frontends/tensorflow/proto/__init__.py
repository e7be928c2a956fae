"""TensorFlow's protobuf messages (GraphDef, SavedModel, TensorBundle, ...), generated
from the .proto files here by ../generate_proto.py; no TensorFlow needed."""
