// dsync hosts and clients speak TCP only. WebRTC needs node-datachannel, whose install
// downloads a binary from GitHub; this stub keeps simple-peer importable without it.
export const RTCPeerConnection = undefined
export const RTCSessionDescription = undefined
export const RTCIceCandidate = undefined
export const RTCDataChannel = undefined
export default { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate, RTCDataChannel }
